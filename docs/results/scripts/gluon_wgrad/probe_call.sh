#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 150 python .gpu/gws_probe.py small $OUT/gws_small.json > $OUT/gws_small.log 2>&1
echo "rc $?" >> $OUT/gws_small.log; tail -c 3000 $OUT/gws_small.log
if grep -q "rel err" $OUT/gws_small.log; then
  timeout -s KILL 400 python .gpu/gws_probe.py 1.4B,7B,30B,120B $OUT/gws_shapes.json > $OUT/gws_shapes.log 2>&1
  echo "rc $?" >> $OUT/gws_shapes.log; cat $OUT/gws_shapes.log | tail -c 5000
fi
