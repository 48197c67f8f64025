#!/bin/bash
# From the repository root on one H200, with .gpu carried (t37.tar.xz: Triton 3.7.1). The CPU-first test files (train,
# bench, distributed, configurator, data) on the GPU under Triton 3.7.1 beside the image's torch 2.11, in parallel
# (pytest-xdist), cut at 270 s by the session's device time. Logs under $OUT: env.txt, cpu_first.log.
mkdir -p /tmp/t37 && tar -xJf .gpu/t37.tar.xz -C /tmp/t37
export PYTHONPATH=/tmp/t37:$PWD OMP_NUM_THREADS=2
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python -c "import triton, torch; print('triton', triton.__version__, triton.__file__, 'torch', torch.__version__)"; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
timeout -s KILL 270 python -m pytest -v -n 10 --timeout=260 --durations=15 -p no:cacheprovider \
  tests/test_train.py tests/test_bench.py tests/test_distributed.py tests/test_configurator.py tests/test_data.py \
  > $OUT/cpu_first.log 2>&1
echo "rc $?" >> $OUT/cpu_first.log
grep -E "FAILED|ERROR" $OUT/cpu_first.log | head -20; tail -20 $OUT/cpu_first.log
