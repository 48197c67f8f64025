export PYTHONPATH=$PWD
timeout -s KILL 130 python .gpu/sq_ab.py > $OUT/sq_ab.log 2>&1; echo rc $? >> $OUT/sq_ab.log
grep -v Warn $OUT/sq_ab.log
timeout -s KILL 110 python -c "
import sys, pytest, sonic_kernels as sk
sk.WG_SQ_ROWS = True
sys.exit(pytest.main(['-q', '-x', '-p', 'no:warnings', 'tests/test_sonic.py', '-k', 'hopper_wgrad_matches and out_dtype0']))
" > $OUT/t_rows.log 2>&1; echo rc $? >> $OUT/t_rows.log
tail -3 $OUT/t_rows.log
timeout -s KILL 200 python bench.py --backends=sonic --rep=400 --shapes=32768x4096:2048/64/4,32768x4096:1024/128/8,32768x4096:512/256/16 > $OUT/bench120_rep400.log 2>&1; echo rc $? >> $OUT/bench120_rep400.log
grep -v Warn $OUT/bench120_rep400.log | tail -12
