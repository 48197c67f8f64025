#!/bin/bash
# From the repository root at 690cc35 plus compile_mode (before the gradients were kept under graphs); its graph_probe run was an earlier version whose "eager" rows after graphing were graphed
# the layer eager against CUDA-graphed; h200_moe compiled by default against reduce-overhead (CUDA graphs)
export PYTHONPATH=$PWD
timeout -s KILL 130 python docs/results/scripts/graphs/graph_probe.py > $OUT/graph_probe.log 2>&1; echo "rc $?" >> $OUT/graph_probe.log
grep -v "Warn\|warn\|return Variable" $OUT/graph_probe.log | tail -16
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
for m in reduce-overhead default; do
  timeout -s KILL 170 python train.py configs/h200_moe.py $E --compile_mode=$m > $OUT/train_$m.log 2>&1; echo "rc $?" >> $OUT/train_$m.log
  echo "== $m"; grep -E "iter (10|20|30|40|50)|val|rc |Error|error" $OUT/train_$m.log | cut -c1-150 | tail -9
done
