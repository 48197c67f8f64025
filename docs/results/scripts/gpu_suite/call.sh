#!/bin/bash
# The CPU-first test files on a GPU machine, in parallel (pytest-xdist, which the H200 image has):
# what a GPU user's `python -m pytest tests` runs there besides the kernels' files. Logs to $OUT.
export PYTHONPATH=$PWD OMP_NUM_THREADS=2
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; } > $OUT/device.txt 2>&1
timeout -s KILL 520 python -m pytest -v -n 8 --timeout=400 --durations=25 -p no:cacheprovider \
  tests/test_train.py tests/test_bench.py tests/test_distributed.py tests/test_configurator.py tests/test_data.py \
  > $OUT/suite.log 2>&1
echo "rc $?" >> $OUT/suite.log
tail -40 $OUT/suite.log
