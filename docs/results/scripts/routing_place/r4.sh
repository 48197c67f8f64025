# dS's parts summed in pair order by one kernel: GPU tests, the down_bwd A/B, launches and host of the layer
export PYTHONPATH=$PWD
timeout -s KILL 60 python .gpu/dscore_host.py > $OUT/dscore_host.log 2>&1; echo rc $? >> $OUT/dscore_host.log; grep -v Warn $OUT/dscore_host.log
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "pair_dscore or hopper_down_bwd or (dtype1 and sonic_matches_references)" > $OUT/t_sonic.log 2>&1; echo rc $? >> $OUT/t_sonic.log; tail -3 $OUT/t_sonic.log
export ONLY="1.4B 256/128/8,1.4B 1024/32/2,7B 256/128/8"
for i in 1 2; do
  SRC=$PWD/.gpu/old timeout -s KILL 80 python .gpu/hostab.py >> $OUT/hostab.log 2>&1
  timeout -s KILL 80 python .gpu/hostab.py >> $OUT/hostab.log 2>&1
done
grep -v Warn $OUT/hostab.log
