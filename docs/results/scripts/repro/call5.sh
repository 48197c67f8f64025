#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6, the image's): the README's end-to-end comparison
# against the peer baseline again, on today's tree: configs/h200_moe.py, 300 iterations, the same seed, weights and
# batches, sonic then grouped_mm, as the README's commands run them, then their curves. Logs under $OUT; the runs'
# directories in the repository root (under $OUT their files were too many to come back), their log.jsonl copied.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt 2>&1
cat $OUT/gpu.txt
python data/stdlib/prepare.py > $OUT/prepare.log 2>&1 || { tail -3 $OUT/prepare.log; exit 1; }
for b in sonic grouped_mm; do
  start=$SECONDS
  timeout -s KILL ${1:-240} python train.py configs/h200_moe.py --save_checkpoints=False --moe_backend=$b \
    --out_dir=out-h200-$b > $OUT/$b.txt 2>&1
  echo "rc $? wall $((SECONDS - start)) s" >> $OUT/$b.txt; cp out-h200-$b/log.jsonl $OUT/${b}_log.jsonl
  grep -E "^iter (10|150|290):|^step|^done|^rc |Error" $OUT/$b.txt | cut -c1-150
done
timeout -s KILL 60 python bench.py --mode=curves --log_files=$OUT/sonic_log.jsonl,$OUT/grouped_mm_log.jsonl \
  --labels=sonic,grouped_mm --out_dir=$OUT/curves > $OUT/curves.log 2>&1; echo "rc $?" >> $OUT/curves.log
tail -4 $OUT/curves.log
