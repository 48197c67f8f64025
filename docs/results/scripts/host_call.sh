#!/bin/bash
# hostprof.py: the host's enqueue time of a 1.4B fwd+bwd, its cProfile, single calls' host cost
export PYTHONPATH=$PWD
timeout -s KILL 200 python .gpu/hostprof.py > $OUT/hostprof.log 2>&1; echo "rc $?" >> $OUT/hostprof.log
head -c 20000 $OUT/hostprof.log | grep -v Warn
