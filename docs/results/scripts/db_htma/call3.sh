#!/bin/bash
# From the repository root on one H200: the int64-offsets test (h's TMA descriptors past 2^31 elements), a third
# pass of the README's kernels-mode command, then layer.py sonic all, two passes (the whole layer). Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q --timeout=140 -p no:cacheprovider tests/test_sonic.py -k "int64" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -2 $OUT/tests.log
S=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4
timeout -s KILL 170 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=$S --out_dir=$OUT/p3 > $OUT/kernels_p3.log 2>&1; echo rc $? >> $OUT/kernels_p3.log
grep "^[0-9]\+x\|_hopper_kernel\|^rc " $OUT/kernels_p3.log
for p in 1 2; do
  timeout -s KILL 120 python docs/results/scripts/layer.py sonic all $OUT/layer_$p.json > $OUT/layer_$p.log 2>&1; echo rc $? >> $OUT/layer_$p.log
  grep -v -i warn $OUT/layer_$p.log | tail -6
done
