export PYTHONPATH=$PWD
timeout -s KILL 100 python .gpu/router_ab.py > $OUT/router_ab.log 2>&1; echo rc $? >> $OUT/router_ab.log
grep -v Warn $OUT/router_ab.log
timeout -s KILL 150 python -m pytest -q -x tests/test_router.py > $OUT/t_router.log 2>&1; echo rc $? >> $OUT/t_router.log
tail -3 $OUT/t_router.log
