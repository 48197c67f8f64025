#!/bin/bash
# From the repository root, compile_mode with the gradients kept under graphs (the first attempt, without, crashed: default_reduce_overhead_crash.log)
# configs/default.py (the quick start's job) compiled by default against reduce-overhead (CUDA graphs),
# with inductor's perf hints (a graph that CUDA graphs skip says why)
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=40 --lr_decay_iters=40 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
i=0
for m in reduce-overhead default reduce-overhead; do
  i=$((i+1)); L=$OUT/default_${i}_$m.log
  TORCH_LOGS=perf_hints timeout -s KILL 120 python train.py configs/default.py $E --compile_mode=$m > $L 2>&1; echo "rc $?" >> $L
  echo "== $m"; grep -iE "cudagraph|skipping" $L | cut -c1-200 | sort | uniq -c | head -5
  grep -E "iter (10|20|30)|val|rc |Error" $L | cut -c1-140 | tail -6
done
