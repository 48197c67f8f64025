# From the repository root on one H200. Triton 3.7.1 (what PyPI's torch 2.13.0 pins) on the H200 beside its torch 2.11 + Triton 3.6: carry .gpu (t37.tar.xz,
# 48 MiB: the wheel without cupti, proton, instrumentation and ptxas-blackwell, libtriton.so stripped). Made by:
#   pip download --no-deps --python-version 3.12 --only-binary=:all: --platform manylinux_2_27_x86_64 triton==3.7.1
#   unzip; rm -rf triton/backends/nvidia/lib/cupti triton/instrumentation triton/_C/libproton.so
#   triton/backends/nvidia/bin/ptxas-blackwell; strip --strip-unneeded triton/_C/libtriton.so; tar | xz -9
export PYTHONPATH=$PWD
mkdir -p /tmp/t37 && tar -xJf .gpu/t37.tar.xz -C /tmp/t37
PYTHONPATH=/tmp/t37:$PWD python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/t37_env.txt 2>&1
cat $OUT/t37_env.txt
PYTHONPATH=/tmp/t37:$PWD timeout -s KILL 280 python -m pytest -v -p no:warnings tests/test_sonic.py -k "hopper and not fp16" > $OUT/t37_tests.log 2>&1; echo rc $? >> $OUT/t37_tests.log
grep -E "FAILED|ERROR|passed|failed|rc " $OUT/t37_tests.log | tail -12
PYTHONPATH=/tmp/t37:$PWD timeout -s KILL 200 python docs/results/scripts/layer.py sonic all $OUT/t37_layer.json > $OUT/t37_layer.log 2>&1; echo rc $? >> $OUT/t37_layer.log
grep -v -i warn $OUT/t37_layer.log | tail -20
