#!/bin/bash
# .gpu/sk_before holds the kernel file before the one-launch AdamW and its old kernel alone, made by
#   mkdir -p .gpu/sk_before && git show 107a103:sonic_kernels.py > .gpu/sk_before/sonic_kernels.py
# and old_adamw.py: triton's imports and that file's _adamw_kernel (host_step.py imports it).
# From the repository root on one H200, with .gpu/sk_before carried (the kernel file before the one-launch AdamW):
# host_step.py (syncs, the host's pace, gc, the optimizer's launches), then train.py on h200_moe before and after,
# alternated, then the GPU's AdamW tests. Logs to $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 200 python docs/results/scripts/device_idle/host_step.py > $OUT/host_step2.log 2>&1; echo "rc $?" >> $OUT/host_step2.log
grep -v -i warn $OUT/host_step2.log | grep -v "^ *[0-9]*  " | head -40
python data/stdlib/prepare.py > /dev/null 2>&1
rm -rf /tmp/before && mkdir /tmp/before && cp -r *.py configs data /tmp/before/ && cp .gpu/sk_before/sonic_kernels.py /tmp/before/
E="--max_iters=50 --lr_decay_iters=50 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
for run in before after before after; do
  if [ $run = before ]; then D=/tmp/before; else D=$PWD; fi
  L=$OUT/train_${run}_$((++i)).log
  (cd $D && PYTHONPATH=$D timeout -s KILL 100 python train.py configs/h200_moe.py $E --out_dir=$OUT/o_$i > $L 2>&1; echo "rc $?" >> $L)
  echo "== $run"; grep -E "^iter (20|30|40)|rc " $L | cut -c1-120
done
timeout -s KILL 60 python -m pytest -q -p no:cacheprovider tests/test_model.py -k adamw > $OUT/adamw_tests.log 2>&1; echo "rc $?" >> $OUT/adamw_tests.log
tail -3 $OUT/adamw_tests.log
