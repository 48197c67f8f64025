# from the repository root on one H200; prediction (written before any run): the wide k32 s6 variant 5-15% less
# time than the tree at 7B, h200_moe, 30B and 120B, 0-5% at 1.4B; narrow k32 s8 likewise against narrow k64 s4
export PYTHONPATH=$PWD
timeout -s KILL 400 python docs/results/scripts/db_k32/dbk32.py $OUT/dbk32.json > $OUT/dbk32.log 2>&1; echo rc $? >> $OUT/dbk32.log
grep -v -i warn $OUT/dbk32.log | tail -70
