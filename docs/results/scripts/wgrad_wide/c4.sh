export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q -x tests/test_sonic.py -k "hopper_wgrad" > $OUT/t_wgrad2.log 2>&1; echo rc $? >> $OUT/t_wgrad2.log
tail -3 $OUT/t_wgrad2.log
timeout -s KILL 300 python .gpu/wide_probe.py > $OUT/wide_probe2.log 2>&1; echo rc $? >> $OUT/wide_probe2.log
grep -v "Warn\|float32" $OUT/wide_probe2.log
