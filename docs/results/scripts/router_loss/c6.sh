export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q tests/test_model.py -k "copies_after or loss" > $OUT/t_copies.log 2>&1; echo "rc $?" >> $OUT/t_copies.log
tail -3 $OUT/t_copies.log
