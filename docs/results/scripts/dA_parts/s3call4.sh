#!/bin/bash
export PYTHONPATH=$PWD
for c in alone after_layer; do
  timeout -s KILL 90 python .gpu/graphdiag2.py $c > $OUT/diag2_$c.log 2>&1; echo "rc $?" >> $OUT/diag2_$c.log
  grep -E "graphed|layer|rc |Error" $OUT/diag2_$c.log | grep -v "^frame" | tail -4
done
timeout -s KILL 120 python -m pytest -q -x tests/test_sonic.py -k "hopper_down_bwd" > $OUT/t_hopper.log 2>&1; echo "rc $?" >> $OUT/t_hopper.log
tail -n 3 $OUT/t_hopper.log
timeout -s KILL 100 python .gpu/sigcmp.py > $OUT/sigcmp.log 2>&1; echo "rc $?" >> $OUT/sigcmp.log
cat $OUT/sigcmp.log
