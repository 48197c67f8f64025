#!/bin/bash
# From the repository root on one GPU (torch 2.11 + Triton 3.6, the image's; no pip, no network): the README's quick
# start first line as a user runs it (its pip step aside: the image has the packages), timed, then the README's
# 60-iteration h200_moe command. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
start=$SECONDS
timeout -s KILL 360 bash -c 'python data/stdlib/prepare.py && python train.py configs/default.py \
  && python sample.py --out_dir=out-default --start="def " --max_new_tokens=200' > $OUT/quick.log 2>&1
echo "rc $? wall $((SECONDS - start)) s" >> $OUT/quick.log; cp out-default/log.jsonl $OUT/quick_log.jsonl
grep -E "^iter (500|1500|2500|2990)|^step|^done|rc |Error" $OUT/quick.log | cut -c1-170 | tail -14
start=$SECONDS
timeout -s KILL 170 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 \
  --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --out_dir=$OUT/h200_moe > $OUT/h200_moe.log 2>&1
echo "rc $? wall $((SECONDS - start)) s" >> $OUT/h200_moe.log
grep -E "^iter (10|20|30|40|50)|^step|^done|rc |Error|peak" $OUT/h200_moe.log | cut -c1-200 | tail -10
