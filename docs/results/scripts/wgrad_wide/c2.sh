export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q -x tests/test_sonic.py -k "hopper_wgrad" > $OUT/t_wgrad.log 2>&1; echo rc $? >> $OUT/t_wgrad.log
tail -3 $OUT/t_wgrad.log
timeout -s KILL 300 python .gpu/wide_probe.py > $OUT/wide_probe.log 2>&1; echo rc $? >> $OUT/wide_probe.log
cat $OUT/wide_probe.log | grep -v Warn
