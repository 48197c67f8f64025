#!/bin/bash
# From the repository root on one H200, right after call.sh (its kernel cache in out_tcache/), carrying .whl/t38.tar.xz
# as call.sh says: the whole layer at the README's four shapes under 3.8.0 and 3.6, in the order 3.8, 3.6, 3.8, 3.6, so
# a drift of the machine shows as a difference between the two passes of one Triton.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
mkdir -p /tmp/t38 && tar -xJf .whl/t38.tar.xz -C /tmp/t38
python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/env_t36.txt 2>&1
for pass in 1 2; do
  PYTHONPATH=/tmp/t38:$PWD timeout -s KILL 170 python docs/results/scripts/layer.py t38 all $OUT/layer_t38_$pass.json \
    > $OUT/t38_$pass.txt 2>&1; echo rc $? >> $OUT/t38_$pass.txt
  timeout -s KILL 170 python docs/results/scripts/layer.py t36 all $OUT/layer_t36_$pass.json > $OUT/t36_$pass.txt 2>&1
  echo rc $? >> $OUT/t36_$pass.txt
done
for f in $OUT/t3*_?.txt; do echo "== $f"; grep -v -i "warn\|leaked\|nanobind\|skipped rem" $f | tail -6; done
rm $OUT/t3*_?.txt   # the device call returns eight files at most; the tables are in the call's output
