#!/bin/bash
# From the repository root on one H200: h200_moe's step under the H200's Triton 3.6 and under 3.7.1 (what PyPI's
# torch 2.13.0 pins; carry .gpu, made as call.sh says), 60 iterations each, the same command; and the EP test
# whose ranks run sonic interpreted (it skips where the interpreter cannot run). Logs to $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 120 python -m pytest -v -p no:cacheprovider tests/test_distributed.py -k all_gather_matches -rs \
  > $OUT/ep_gather_tests.log 2>&1; echo "rc $?" >> $OUT/ep_gather_tests.log
tail -6 $OUT/ep_gather_tests.log
python data/stdlib/prepare.py > $OUT/prepare.log 2>&1
mkdir -p /tmp/t37 && tar -xJf .gpu/t37.tar.xz -C /tmp/t37
RUN="python train.py configs/h200_moe.py --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False"
timeout -s KILL 200 $RUN --out_dir=/tmp/o36 > $OUT/h200_moe_t36.log 2>&1; echo "rc $?" >> $OUT/h200_moe_t36.log
PYTHONPATH=/tmp/t37:$PWD python -c "import triton, torch; print(triton.__version__, triton.__file__, torch.__version__)" > $OUT/t37_env.txt 2>&1
PYTHONPATH=/tmp/t37:$PWD TRITON_CACHE_DIR=/tmp/t37cache timeout -s KILL 240 $RUN --out_dir=/tmp/o37 > $OUT/h200_moe_t371.log 2>&1
echo "rc $?" >> $OUT/h200_moe_t371.log
for f in t36 t371; do echo "== $f"; grep -E "^iter (20|30|40|50)|val loss|rc " $OUT/h200_moe_$f.log | tail -8; done
cat $OUT/t37_env.txt
