export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q -x tests/test_bench.py -k "profile_counts_every_kernel_on_the_gpu or kernels_go" > $OUT/t_bench.log 2>&1; echo rc $? >> $OUT/t_bench.log; tail -3 $OUT/t_bench.log
