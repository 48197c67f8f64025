export PYTHONPATH=$PWD
timeout -s KILL 300 python docs/results/scripts/db_ring/dbring.py $OUT/dbring.json > $OUT/dbring.log 2>&1; echo rc $? >> $OUT/dbring.log
grep -v -i warn $OUT/dbring.log | tail -50
