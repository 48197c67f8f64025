#!/bin/bash
# From the repository root on one H200, with .gpu carried (t37.tar.xz: Triton 3.7.1, as docs/results/scripts/triton371/call.sh
# says). The Hopper kernels' gates now ask rows of 16 elements for their cp.async copies (sonic_kernels._rows_by_cp_async).
# 1. Triton 3.6 (the image's): the gate tests and the TMA test (d = 72, n = 40, both dtypes).
# 2. Triton 3.7.1: test_sonic, test_model, test_router whole; test_sm90 for sm_80 and sm_90 and the gates (the carry has
#    no ptxas-blackwell, so not sm_100). Logs under $OUT: t36.log, t37.log, env.txt.
mkdir -p /tmp/t37 && tar -xJf .gpu/t37.tar.xz -C /tmp/t37
export OMP_NUM_THREADS=2
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python -c "import triton, torch; print('image: triton', triton.__version__, 'torch', torch.__version__)"
  PYTHONPATH=/tmp/t37 python -c "import triton; print('carried: triton', triton.__version__, triton.__file__)"; } > $OUT/env.txt 2>&1
cat $OUT/env.txt
PYTHONPATH=$PWD timeout -s KILL 200 python -m pytest -v -n 4 --timeout=180 -p no:cacheprovider tests/test_sonic.py \
  -k "tma_loads or only_where_it_runs" > $OUT/t36.log 2>&1
echo "rc $?" >> $OUT/t36.log
grep -E "FAILED|ERROR" $OUT/t36.log | head; tail -2 $OUT/t36.log
PYTHONPATH=/tmp/t37:$PWD timeout -s KILL 400 python -m pytest -v -n 6 --timeout=380 --durations=10 -p no:cacheprovider \
  tests/test_sonic.py tests/test_model.py tests/test_router.py "tests/test_sm90.py::test_every_config_compiles[80]" \
  "tests/test_sm90.py::test_every_config_compiles[90]" tests/test_sm90.py::test_hopper_gates_take_only_what_compiles \
  > $OUT/t37.log 2>&1
echo "rc $?" >> $OUT/t37.log
grep -E "FAILED|ERROR" $OUT/t37.log | head -20; tail -14 $OUT/t37.log
