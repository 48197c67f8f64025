export PYTHONPATH=$PWD
timeout -s KILL 540 python -m pytest -q -p no:warnings -rA --durations=10 tests/test_model.py tests/test_router.py tests/test_train.py tests/test_bench.py tests/test_distributed.py tests/test_configurator.py tests/test_data.py > $OUT/t_rest.log 2>&1; echo rc $? >> $OUT/t_rest.log
grep -E "^(FAILED|ERROR)|passed|failed|rc " $OUT/t_rest.log | tail -30
