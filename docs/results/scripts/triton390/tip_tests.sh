#!/bin/bash
# Any H100/H200 (torch 2.11 + Triton 3.6, the image's); carry .whl (t39.tar.xz: Triton 3.9.0, what PyPI's newest
# torch pins, stripped as db_wide_regs/call1.sh's header says, cuobjdump and FileCheck dropped too). test_sonic.py and
# test_router.py on the GPU under Triton 3.9, on today's tree (run with 470). Logs under $OUT.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/t39 && tar -xJf .whl/t39.tar.xz -C /tmp/t39
T39="env TRITON_BACKENDS_IN_TREE=1 PYTHONPATH=/tmp/t39:$PWD"
$T39 python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" 2>&1 | tee $OUT/env_t39.txt
python -c "import xdist; print('xdist', xdist.__version__)" 2>&1 | tail -1
start=$SECONDS
$T39 timeout -s KILL ${1:-480} python -m pytest -v -n 8 -p no:cacheprovider -rs --durations=10 tests/test_sonic.py \
  tests/test_router.py > $OUT/t39_tests.log 2>&1
echo "rc $? wall $((SECONDS - start)) s" >> $OUT/t39_tests.log
grep -E "passed|failed|error" $OUT/t39_tests.log | tail -3; tail -1 $OUT/t39_tests.log
grep -E "FAILED|ERROR" $OUT/t39_tests.log | head -20
