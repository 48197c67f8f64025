export PYTHONPATH=$PWD
timeout 60 python -m pytest -q -p no:cacheprovider tests/test_model.py -k "adamw or clipped or optimizer" > $OUT/pytest_adamw_op.log 2>&1; echo "rc $?" >> $OUT/pytest_adamw_op.log
timeout 40 python .gpu/profdiag.py > $OUT/profdiag.log 2>&1
timeout 90 python .gpu/stepprof.py > $OUT/step_op.log 2>&1; echo "rc $?" >> $OUT/step_op.log
tail -2 $OUT/pytest_adamw_op.log; grep -v Warn $OUT/profdiag.log | head; grep "opt=\|rc" $OUT/step_op.log
