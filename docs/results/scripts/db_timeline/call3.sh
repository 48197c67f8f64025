#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6), with .gpu/sk_head carried (the last commit's
# sonic_kernels.py): dA''s epilogue with h and the scores loaded into registers a chunk ahead, against the ring of h
# before it (dbab.py), its clock stamps (dbtl.py), and the Hopper dA' and layer tests on the GPU. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 200 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_head/sonic_kernels.py $OUT/dbab.json > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log
timeout -s KILL 120 python docs/results/scripts/db_timeline/dbtl.py $OUT/dbtl.json 1.4B 7B 120B > $OUT/dbtl.log 2>&1; echo rc $? >> $OUT/dbtl.log
grep -v -i warn $OUT/dbtl.log | grep "==\|MMAs done\|epilogue: its work\|waits for the acc\|item period\|waits on its stages"
timeout -s KILL 200 python -m pytest -q -n 6 --timeout=190 -p no:cacheprovider tests/test_sonic.py -k "hopper_down_bwd or layer or down_bwd" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
