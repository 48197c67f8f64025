#!/bin/bash
# From the repository root on one H200, with .gpu carried (t37.tar.xz: Triton 3.7.1, what PyPI's torch 2.13.0 pins,
# made as docs/results/scripts/triton371/call.sh says). The kernels' test files (test_sonic whole, portable path and
# Hopper path, test_model, test_router, test_sm90) on the GPU under Triton 3.7.1 beside the image's torch 2.11.
# Logs under $OUT: env.txt, suite.log.
mkdir -p /tmp/t37 && tar -xJf .gpu/t37.tar.xz -C /tmp/t37
export PYTHONPATH=/tmp/t37:$PWD OMP_NUM_THREADS=2
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python -c "import triton, torch; print('triton', triton.__version__, triton.__file__, 'torch', torch.__version__)"; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
timeout -s KILL 560 python -m pytest -v -n 6 --timeout=500 --durations=15 -p no:cacheprovider \
  tests/test_sonic.py tests/test_model.py tests/test_router.py tests/test_sm90.py > $OUT/suite.log 2>&1
echo "rc $?" >> $OUT/suite.log
grep -E "FAILED|ERROR" $OUT/suite.log | head -30
tail -22 $OUT/suite.log
