export PYTHONPATH=$PWD
timeout -s KILL 120 python -m pytest -q tests/test_sonic.py -k "(dtype1 and sonic_matches_references) or memory_contract or test_deterministic" > $OUT/t_layer.log 2>&1; echo rc $? >> $OUT/t_layer.log
tail -2 $OUT/t_layer.log
timeout -s KILL 100 python -m pytest -q tests/test_sonic.py -k "custom_ops_match_eager" > $OUT/t_custom.log 2>&1; echo rc $? >> $OUT/t_custom.log
tail -2 $OUT/t_custom.log
for lab in wide narrow wide2 narrow2; do
  case $lab in narrow*) export SK_WG_WIDE=0;; *) unset SK_WG_WIDE;; esac
  timeout -s KILL 85 python docs/results/scripts/layer.py $lab all $OUT/layer_$lab.json > $OUT/layer_$lab.log 2>&1; echo "rc $?" >> $OUT/layer_$lab.log
  grep -v Warn $OUT/layer_$lab.log | tail -6
done
