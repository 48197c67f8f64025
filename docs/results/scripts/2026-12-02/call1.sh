#!/bin/bash
# AdamW with bf16 moments: GPU tests, the step timed alone, h200_moe 60 iterations fp32 vs bf16 moments
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv > $OUT/env.txt
python -c "import torch,triton;print(torch.__version__, triton.__version__)" >> $OUT/env.txt 2>&1
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 150 python -m pytest -q -p no:cacheprovider tests/test_model.py -k adamw > $OUT/pytest_adamw.log 2>&1; echo "rc $?" >> $OUT/pytest_adamw.log
tail -3 $OUT/pytest_adamw.log
timeout -s KILL 100 python .gpu/adamw_bench.py > $OUT/adamw_bench.log 2>&1; echo "rc $?" >> $OUT/adamw_bench.log
cat $OUT/adamw_bench.log
for s in float32 bfloat16; do
  timeout -s KILL 150 python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 \
    --eval_iters=2 --save_checkpoints=False --log_interval=10 --adamw_states=$s --out_dir=$OUT/run_$s > $OUT/train_$s.log 2>&1
  echo "rc $?" >> $OUT/train_$s.log
  grep -E "^iter|^step|rc " $OUT/train_$s.log | tail -9
done
