#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 120 python docs/results/scripts/gluon_wgrad/wgrad_h200_moe.py $OUT/wgrad_h200_moe.json > $OUT/wgrad_h200_moe.log 2>&1
echo "rc $?" >> $OUT/wgrad_h200_moe.log; cat $OUT/wgrad_h200_moe.log
