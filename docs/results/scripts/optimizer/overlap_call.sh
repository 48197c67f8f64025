set -x
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv > $OUT/gpu.txt 2>&1
true
tail -3 $OUT/tests.log
timeout -s KILL 330 python .gpu/overlap_probe.py > $OUT/probe.log 2>&1; echo "probe rc $?" >> $OUT/probe.log
grep -v Warning $OUT/probe.log | tail -25
