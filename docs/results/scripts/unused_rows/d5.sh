export PYTHONPATH=$PWD
timeout -s KILL 60 python -m pytest -v -p no:warnings tests/test_train.py::test_bf16_adamw_states_resume_exactly "tests/test_train.py::test_fused_adamw_clips_inside_its_step" > $OUT/t_adamw_cpu.log 2>&1; echo rc $? >> $OUT/t_adamw_cpu.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc " $OUT/t_adamw_cpu.log | tail -6
timeout -s KILL 110 python -m pytest -v -p no:warnings $(cat .gpu/rest_train.txt) tests/test_bench.py tests/test_configurator.py tests/test_data.py > $OUT/t_rest2.log 2>&1; echo rc $? >> $OUT/t_rest2.log
grep -E "FAILED|ERROR|passed|failed|rc " $OUT/t_rest2.log | tail -10; grep -c PASSED $OUT/t_rest2.log
