export PYTHONPATH=$PWD
timeout -s KILL 60 python -m pytest -v -p no:warnings tests/test_train.py::test_bf16_adamw_states_resume_exactly "tests/test_train.py::test_fused_adamw_clips_inside_its_step" > $OUT/t_adamw_cpu.log 2>&1; echo rc $? >> $OUT/t_adamw_cpu.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc " $OUT/t_adamw_cpu.log | tail -6
timeout -s KILL 100 python docs/results/scripts/l2_window/l2win.py $OUT/l2win.json > $OUT/l2win.log 2>&1; echo rc $? >> $OUT/l2win.log
grep -v -i warn $OUT/l2win.log | tail -30
