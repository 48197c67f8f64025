export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/up_handover/nandbg.py > $OUT/nandbg.log 2>&1; echo rc $? >> $OUT/nandbg.log
grep -v Warn $OUT/nandbg.log | tail -20
