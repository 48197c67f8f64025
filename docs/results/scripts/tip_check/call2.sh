#!/bin/bash
# From the repository root on one H200 (or the H100 lent for it), torch 2.11 + Triton 3.6: the tree as a GPU user
# runs it. The model's, training's and router's tests on the GPU; the quick start's training (the default config on
# a GPU, 100 iterations, a checkpoint) and its sampling; the layer's Hopper-path kernel tests. Logs under $OUT.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" >> $OUT/env.log 2>&1
cat $OUT/env.log
timeout -s KILL 200 python -m pytest -q -n 8 --timeout=190 -p no:cacheprovider tests/test_model.py tests/test_train.py \
  tests/test_router.py > $OUT/tests_model_train_router.log 2>&1; echo rc $? >> $OUT/tests_model_train_router.log
tail -3 $OUT/tests_model_train_router.log
python data/stdlib/prepare.py > $OUT/quickstart.log 2>&1
timeout -s KILL 170 python train.py configs/default.py --max_iters=100 --lr_decay_iters=100 --eval_interval=50 \
  --eval_iters=5 >> $OUT/quickstart.log 2>&1; echo rc $? >> $OUT/quickstart.log
timeout -s KILL 60 python sample.py --out_dir=out-default --start="def " --max_new_tokens=100 --num_samples=1 \
  >> $OUT/quickstart.log 2>&1; echo rc $? >> $OUT/quickstart.log
grep -E "^iter (0|50|90)|val loss|rc |saving|Error" $OUT/quickstart.log | tail -12
timeout -s KILL 150 python -m pytest -q -n 8 --timeout=140 -p no:cacheprovider tests/test_sonic.py -k "hopper or layer" \
  > $OUT/tests_sonic_hopper.log 2>&1; echo rc $? >> $OUT/tests_sonic_hopper.log
tail -3 $OUT/tests_sonic_hopper.log
