#!/bin/bash
# From the repository root on one H200, not yet run. The whole layer under Triton 3.9.0 (what PyPI's newest torch,
# 2.15.0, pins: what `pip install -r requirements.txt` brings a GPU user on Python 3.11 to 3.13) beside the H200's
# torch 2.11 + Triton 3.6, in one call: layer.py at the README's four shapes, 3.9 / 3.6 / 3.9 / 3.6, so a drift of
# the machine shows as a difference between the two passes of one Triton. Carry .whl (t39.tar.xz, made as
# db_wide_regs/call1.sh's header says; it needs TRITON_BACKENDS_IN_TREE=1). The dA' tests under 3.9 are
# db_wide_regs/call1.sh's; test_sonic's Hopper-path tests passed under 3.9 on 2026-12-03 (docs/LOG.md).
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/gpu.txt 2>&1
mkdir -p /tmp/t39 && tar -xJf .whl/t39.tar.xz -C /tmp/t39
T39="env TRITON_BACKENDS_IN_TREE=1 PYTHONPATH=/tmp/t39:$PWD"
$T39 python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/env_t39.txt 2>&1
python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/env_t36.txt 2>&1
cat $OUT/env_t39.txt $OUT/env_t36.txt
for pass in 1 2; do
  lim=$((pass == 1 ? 160 : 110))   # the first pass of each Triton compiles its kernels
  $T39 timeout -s KILL $lim python docs/results/scripts/layer.py t39 all $OUT/layer_t39_$pass.json > $OUT/layer_t39_$pass.log 2>&1
  echo rc $? >> $OUT/layer_t39_$pass.log; grep -v -i warn $OUT/layer_t39_$pass.log | tail -5
  timeout -s KILL $lim python docs/results/scripts/layer.py t36 all $OUT/layer_t36_$pass.json > $OUT/layer_t36_$pass.log 2>&1
  echo rc $? >> $OUT/layer_t36_$pass.log; grep -v -i warn $OUT/layer_t36_$pass.log | tail -5
done
