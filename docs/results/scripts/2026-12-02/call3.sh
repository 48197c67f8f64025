#!/bin/bash
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > $OUT/env.txt
timeout -s KILL 300 python .gpu/dbpf.py > $OUT/dbpf.log 2>&1; echo "rc $?" >> $OUT/dbpf.log
cut -c1-700 $OUT/dbpf.log | tail -30
