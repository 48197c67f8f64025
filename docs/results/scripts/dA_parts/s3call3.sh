#!/bin/bash
export PYTHONPATH=$PWD
for off in "" HOPPER_DOWN_BWD HOPPER_WGRAD HOPPER_GROUPED WG_TMA_STORE; do
  timeout -s KILL 60 python .gpu/graphdiag.py "$off" > $OUT/diag_$off.log 2>&1; echo "rc $? [$off]" >> $OUT/diag_$off.log
  grep -E "off=|rc " $OUT/diag_$off.log
done
timeout -s KILL 230 python .gpu/dbepi.py > $OUT/dbepi.log 2>&1; echo "rc $?" >> $OUT/dbepi.log
grep -v "launching\|: ran$" $OUT/dbepi.log | tail -40
