#!/bin/bash
# Run from the repository root on the device, records in $OUT: 1) the round_pairs and router GPU tests at the landed
# settings; 2) top-K and rounding in one process (the README's token-rounding line). The call's script went on, on an
# H200 only, to the README's h200_moe run; on the H100 it ended here, and that step is left out of this record.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
timeout -s KILL 150 python -m pytest -q -rf tests/test_sonic.py tests/test_router.py \
  -k "round_pairs or scores_against or whole_module_saves" > $OUT/gpu_tests.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/gpu_tests.log; tail -n 4 $OUT/gpu_tests.log
timeout -s KILL 150 python bench.py --mode=train --backends=sonic --n_embd=1536 --n_expert=128 \
  --batch_size=8 --block_size=2048 --routing=both --steps=20 --out_dir=/tmp/rb > $OUT/train.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/train.log; grep -E "ms/step|rc |peak" $OUT/train.log | tee -a $OUT/each.txt
cp /tmp/rb/train.json $OUT/train_rounding.json 2>/dev/null
