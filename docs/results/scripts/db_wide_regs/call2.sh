#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6), carrying .whl/t39.tar.xz as call1.sh does. The tree
# with DB_WIDE_CONFIG's split by Triton (160 / 152 / 40 under 3.9, 160 / 160 / 32 below): test_sonic's dA' tests under
# 3.9 (call1.sh's were cut at 120 s, compiling), then one pass of the whole layer under 3.9. Logs under $OUT.
export PYTHONPATH=$PWD
mkdir -p /tmp/t39 && tar -xJf .whl/t39.tar.xz -C /tmp/t39
export TRITON_BACKENDS_IN_TREE=1
PYTHONPATH=/tmp/t39:$PWD python -c "import sonic_kernels as sk, triton; print(triton.__version__, sk.DB_WIDE_CONFIG)"
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 330 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "down_bwd" \
  > $OUT/tests_t39.log 2>&1; echo rc $? >> $OUT/tests_t39.log; grep -E "passed|failed|rc " $OUT/tests_t39.log | tail -3
PYTHONPATH=/tmp/t39:$PWD timeout -s KILL 150 python docs/results/scripts/layer.py t39 all $OUT/layer_t39.json \
  > $OUT/layer_t39.log 2>&1; echo rc $? >> $OUT/layer_t39.log; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $OUT/layer_t39.log
