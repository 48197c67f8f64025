#!/bin/bash
# From the repository root (main at 690cc35 plus the compile_mode change); what ran for docs/results/graphs and docs/results/clocks
export PYTHONPATH=$PWD
timeout -s KILL 130 python docs/results/scripts/graphs/graph_probe.py > $OUT/graph_probe.log 2>&1; echo "rc $?" >> $OUT/graph_probe.log
grep -v "Warn\|warn\|return Variable" $OUT/graph_probe.log | tail -16
bash docs/results/scripts/clocks_call.sh
