#!/bin/bash
# up-projection with TMA stores (A/B, alone); h200_moe 300 iterations bf16 then fp32 moments
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv > $OUT/env.txt
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 200 python .gpu/upstore.py > $OUT/upstore.log 2>&1; echo "rc $?" >> $OUT/upstore.log
cat $OUT/upstore.log | cut -c1-400
for s in bfloat16 float32; do
  timeout -s KILL 170 python train.py configs/h200_moe.py --save_checkpoints=False --adamw_states=$s --out_dir=$OUT/c300_$s > $OUT/train300_$s.log 2>&1
  echo "rc $?" >> $OUT/train300_$s.log
  grep -E "^step|rc |iter (100|200|290)" $OUT/train300_$s.log | cut -c1-200
done
