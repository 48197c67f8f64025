#!/bin/bash
# dA''s 256-column items with the rows of dO read once a step into registers (the change) against the kernel before
# it (.gpu/sk_tip/sonic_kernels.py, carried): bit for bit and timed; the GPU tests of dA' and the layer; one pass of
# the README's kernels-mode command and of layer.py. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 150 python docs/results/scripts/db_timeline/dbab.py .gpu/sk_tip/sonic_kernels.py $OUT/dbab.json \
  > $OUT/dbab.log 2>&1; echo rc $? >> $OUT/dbab.log
grep -v -i warn $OUT/dbab.log | tail -n 16
timeout -s KILL 200 python -m pytest -q -x tests/test_sonic.py -k "down_bwd or sonic_matches or memory_contract or \
deterministic or unwritten or gpt_trains or compile_fullgraph or int64 or custom_ops or expert_copies" > $OUT/tests.log 2>&1
echo rc $? >> $OUT/tests.log
tail -n 3 $OUT/tests.log
timeout -s KILL 120 python bench.py --mode=kernels --backends=sonic --kernels_top=12 \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1
echo rc $? >> $OUT/kernels.log
grep -i "dA'\|down_bwd\|rc " $OUT/kernels.log | head -n 12
timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer.json > $OUT/layer.log 2>&1
echo rc $? >> $OUT/layer.log
tail -n 6 $OUT/layer.log
echo "at $SECONDS s"
