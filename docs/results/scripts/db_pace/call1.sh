#!/bin/bash
# From the repository root on one H200: dA' with its epilogue paced by sleeps (dbpace.py) at 30B and 120B, and the
# smallest pause at 7B. Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 420 python docs/results/scripts/db_pace/dbpace.py $OUT/dbpace.json 250,600,1000 30B 120B > $OUT/dbpace.log 2>&1; echo rc $? >> $OUT/dbpace.log
timeout -s KILL 120 python docs/results/scripts/db_pace/dbpace.py $OUT/dbpace7b.json 250 7B > $OUT/dbpace7b.log 2>&1; echo rc $? >> $OUT/dbpace7b.log
grep -v -i warn $OUT/dbpace.log $OUT/dbpace7b.log
