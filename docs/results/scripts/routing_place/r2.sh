export PYTHONPATH=$PWD
timeout -s KILL 60 python .gpu/meta_host.py > $OUT/meta_host.log 2>&1; echo rc $? >> $OUT/meta_host.log; grep -v Warn $OUT/meta_host.log
timeout -s KILL 60 python .gpu/profdiag.py > $OUT/profdiag.log 2>&1; echo rc $? >> $OUT/profdiag.log
grep -E "route|tile|_kernel|cub|rc " $OUT/profdiag.log | cut -c1-300 | head -60
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "memory_contract or empty_batch or deterministic" > $OUT/t_sonic.log 2>&1; echo rc $? >> $OUT/t_sonic.log; tail -3 $OUT/t_sonic.log
