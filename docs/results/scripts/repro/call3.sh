#!/bin/bash
# From the repository root on one GPU (torch 2.11 + Triton 3.6, the image's): the README's quick start first line
# again (its pip step aside), with configs/default.py's GPU run cut from 3000 iterations to 1000. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
start=$SECONDS
timeout -s KILL ${1:-240} bash -c 'python data/stdlib/prepare.py && python train.py configs/default.py \
  && python sample.py --out_dir=out-default --start="def " --max_new_tokens=200' > $OUT/quick.log 2>&1
echo "rc $? wall $((SECONDS - start)) s" >> $OUT/quick.log; cp out-default/log.jsonl $OUT/quick_log.jsonl
grep -E "^iter (500|900|990)|^step|^done|rc |Error" $OUT/quick.log | cut -c1-170 | tail -14
