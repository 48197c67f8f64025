#!/bin/bash
# .gpu/sk_before holds the kernel file before the one-launch AdamW and its old kernel alone, made by
#   mkdir -p .gpu/sk_before && git show 107a103:sonic_kernels.py > .gpu/sk_before/sonic_kernels.py
# and old_adamw.py: triton's imports and that file's _adamw_kernel (host_step.py imports it).
# From the repository root on one H200, with .gpu/sk_before carried: h200_moe's compiled profile with the unprofiled
# steps beside it; the quick start's config (host-bound, CUDA graphs) before and after the one-launch AdamW,
# alternated; the GPU profile tests. Logs to $OUT.
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1
timeout -s KILL 150 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --profile_steps=5 \
  --out_dir=$OUT/compiled > $OUT/profile_compiled.log 2>&1; echo "rc $?" >> $OUT/profile_compiled.log
grep -v -i warn $OUT/profile_compiled.log | grep -E "ms per step|unprofiled|^(attention|moe|optimizer|norms|other|idle|sum) |rc " | head -16
rm -rf /tmp/before && mkdir /tmp/before && cp -r *.py configs data /tmp/before/ && cp .gpu/sk_before/sonic_kernels.py /tmp/before/
E="--max_iters=40 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
i=0
for run in after before after before; do
  if [ $run = before ]; then D=/tmp/before; else D=$PWD; fi
  i=$((i+1)); L=$OUT/default_${run}_$i.log
  (cd $D && PYTHONPATH=$D timeout -s KILL 75 python train.py configs/default.py $E --out_dir=/tmp/o_$i > $L 2>&1; echo "rc $?" >> $L)
  echo "== $run"; grep -E "^iter (10|20|30)|rc " $L | cut -c1-110
done
timeout -s KILL 100 python -m pytest -v -p no:cacheprovider tests/test_bench.py -k "sonic_layer or every_kernel" \
  > $OUT/profile_tests.log 2>&1; echo "rc $?" >> $OUT/profile_tests.log
grep -E "PASSED|FAILED|ERROR|rc |^E " $OUT/profile_tests.log | tail -6
