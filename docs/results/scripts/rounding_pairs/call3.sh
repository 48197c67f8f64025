#!/bin/bash
# The chunked pair-list kernel: probe2.py (its launch settings), the GPU tests of token rounding and the router on
# this tree (bf16), then the README's rounding command, rounded only (top-K's path is not touched), this tree then
# the tree before token rounding's kernels (abtest_main/: 6b78125's top-level files); ms/step per run in each.txt.
export PYTHONPATH=$PWD
timeout -s KILL 90 python docs/results/scripts/rounding_pairs/probe2.py > $OUT/probe2.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/probe2.log; grep -v Warn $OUT/probe2.log
timeout -s KILL ${1:-100} python -m pytest -q -rf tests/test_sonic.py tests/test_router.py \
  -k "round_pairs or scores_against or whole_module_saves" > $OUT/gpu_tests.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/gpu_tests.log; tail -n 4 $OUT/gpu_tests.log
for v in new main; do
  b=abtest_$v/bench.py; [ $v = new ] && b=bench.py
  timeout -s KILL 70 python $b --mode=train --backends=sonic --n_embd=1536 --n_expert=128 \
    --batch_size=8 --block_size=2048 --routing=rounding --steps=20 --out_dir=/tmp/rq_$v > /tmp/rq_$v.log 2>&1
  echo "rc $? at $SECONDS s" >> /tmp/rq_$v.log; cat /tmp/rq_$v.log >> $OUT/train2_$v.log
  grep -E "ms/step|rc " /tmp/rq_$v.log | sed "s/^/$v /" | tee -a $OUT/each.txt
done
