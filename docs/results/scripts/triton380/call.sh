#!/bin/bash
# From the repository root on one H200. Triton 3.8.0 (what PyPI's torch 2.14.1, Python 3.10's newest, pins) beside the
# H200's torch 2.11 + Triton 3.6, as triton371/call.sh did for 3.7.1: test_sonic's Hopper-path tests under 3.8.0, then
# one pass of the whole layer at the README's four shapes (which also fills the kernel cache for call2.sh).
# Carry .whl/t38.tar.xz (46 MiB: the cp312 wheel without cupti, proton, plugins, instrumentation, nvdisasm and
# ptxas-blackwell, libtriton.so stripped). Made by:
#   pip download --no-deps --python-version 3.12 --only-binary=:all: --platform manylinux_2_27_x86_64 triton==3.8.0
#   unzip; rm -rf triton/backends/nvidia/lib/cupti triton/backends/nvidia/lib/cupti-blackwell triton/instrumentation
#   triton/plugins triton/_C/libproton.so triton/backends/nvidia/bin/{ptxas-blackwell,nvdisasm}
#   strip --strip-unneeded triton/_C/libtriton.so
#   tar -cf - triton triton-3.8.0.dist-info | xz -9 > .whl/t38.tar.xz
# The kernel cache sits in out_tcache/ (ignored by git), which a warm machine keeps for the next call.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv > $OUT/gpu.txt 2>&1
mkdir -p /tmp/t38 && tar -xJf .whl/t38.tar.xz -C /tmp/t38
T38="env PYTHONPATH=/tmp/t38:$PWD"
$T38 python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/env_t38.txt 2>&1
cat $OUT/gpu.txt $OUT/env_t38.txt
$T38 timeout -s KILL 360 python -m pytest -q -p no:warnings -p no:cacheprovider tests/test_sonic.py -k "hopper" \
  > $OUT/tests_t38.log 2>&1; echo rc $? >> $OUT/tests_t38.log; grep -E "passed|failed|rc " $OUT/tests_t38.log | tail -3
$T38 timeout -s KILL 170 python docs/results/scripts/layer.py t38 all $OUT/layer_t38_0.json > $OUT/layer_t38_0.log 2>&1
echo rc $? >> $OUT/layer_t38_0.log; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $OUT/layer_t38_0.log | tail -6
