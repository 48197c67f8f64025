export PYTHONPATH=$PWD
timeout -s KILL 330 python -m pytest -q -p no:warnings tests/test_sonic.py -k "compile or memory_contract or deterministic" > $OUT/t_layer.log 2>&1; echo rc $? >> $OUT/t_layer.log
tail -4 $OUT/t_layer.log
