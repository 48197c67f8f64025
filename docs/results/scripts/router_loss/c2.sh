export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q tests/test_router.py -x > $OUT/t_router.log 2>&1; echo rc $? >> $OUT/t_router.log; tail -3 $OUT/t_router.log
timeout -s KILL 200 python -m pytest -q tests/test_sonic.py -x -k "compile or custom_ops or memory_contract or copies" > $OUT/t_sonic.log 2>&1; echo rc $? >> $OUT/t_sonic.log; tail -3 $OUT/t_sonic.log
timeout -s KILL 200 python bench.py --backends=sonic --check=False --shapes=40960x768:256/128/8,40960x768:512/64/4,40960x768:1024/32/2,24576x1536:256/128/8,24576x1536:512/64/4,24576x1536:1024/32/2 --out_dir=$OUT/bench_small > $OUT/bench_small.log 2>&1; grep -v Warn $OUT/bench_small.log | tail -30
