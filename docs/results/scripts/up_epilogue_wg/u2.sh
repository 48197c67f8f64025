#!/bin/bash
# h200_moe end to end and bench's profile (clip + copies) on the Hopper up-projection; a second layer A/B pass
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
E2E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 110 python train.py configs/h200_moe.py $E2E --out_dir=$OUT/e2e > $OUT/e2e.log 2>&1; echo "rc $?" >> $OUT/e2e.log
grep -E "^iter (10|20|30|40|50)|val loss|peak|memory|rc" $OUT/e2e.log | tail -9
timeout -s KILL 100 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo "rc $?" >> $OUT/profile.log
grep -v "^frame" $OUT/profile.log | tail -n 40
for lab in hopper2 triton2; do
  if [[ $lab == triton* ]]; then export SK_HOPPER_UP=0; else unset SK_HOPPER_UP; fi
  timeout -s KILL 70 python docs/results/scripts/layer.py $lab all $OUT/layer_$lab.json > $OUT/layer_$lab.log 2>&1; echo "rc $?" >> $OUT/layer_$lab.log
  cat $OUT/layer_$lab.log
done
