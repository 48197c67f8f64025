set -x
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw --format=csv
timeout -s KILL 400 python .gpu/gaps.py > $OUT/gaps.log 2>&1; echo rc $? >> $OUT/gaps.log
tail -5 $OUT/gaps.log
