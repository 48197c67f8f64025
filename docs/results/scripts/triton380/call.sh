# From the repository root on one H200, not yet run. Triton 3.8.0 (what PyPI's torch 2.14.1, Python 3.10's newest,
# pins) beside the H200's torch 2.11 + Triton 3.6, as triton371/call.sh did for 3.7.1: the Hopper-path tests and one
# pass of the whole layer at the README's four shapes (3.6's: the README's layer figures).
# Carry .whl (t38.tar.xz, 58 MiB: the cp312 wheel without cupti, proton, instrumentation and ptxas-blackwell,
# libtriton.so stripped). Made by:
#   pip download --no-deps --python-version 3.12 --only-binary=:all: --platform manylinux_2_27_x86_64 triton==3.8.0
#   unzip; rm -rf triton/backends/nvidia/lib/cupti triton/instrumentation triton/_C/libproton.so
#   triton/backends/nvidia/bin/ptxas-blackwell; strip --strip-unneeded triton/_C/libtriton.so
#   tar -cf - triton triton-3.8.0.dist-info | xz -9 > .whl/t38.tar.xz
export PYTHONPATH=$PWD
mkdir -p /tmp/t38 && tar -xJf .whl/t38.tar.xz -C /tmp/t38
PYTHONPATH=/tmp/t38:$PWD python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/t38_env.txt 2>&1
cat $OUT/t38_env.txt
PYTHONPATH=/tmp/t38:$PWD timeout -s KILL 300 python -m pytest -q -p no:warnings tests/test_sonic.py -k "hopper" > $OUT/t38_sonic.log 2>&1; echo rc $? >> $OUT/t38_sonic.log
tail -4 $OUT/t38_sonic.log
PYTHONPATH=/tmp/t38:$PWD timeout -s KILL 240 python docs/results/scripts/layer.py sonic all $OUT/t38_layer.json > $OUT/t38_layer.log 2>&1; echo rc $? >> $OUT/t38_layer.log
grep -v -i warn $OUT/t38_layer.log | tail -8
