#!/bin/bash
# bench.py --mode=profile's unprofiled window: opened after a sync (bench_old.py, the code before) against
# opened after the burn-in unsynced and timed by CUDA events (bench.py), alternated in one call
# .gpu/v5/bench_old.py held the code before the change: git show 19926de:bench.py
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
cp .gpu/v5/bench_old.py bench_old.py
prof() {  # $1 tag, $2 script, then bench's flags
  tag=$1; b=$2; shift 2
  timeout 180 python $b --mode=profile --backends=sonic --out_dir=/tmp/$tag "$@" > $OUT/$tag.log 2>&1
  echo "rc $? at $SECONDS s" >> $OUT/$tag.log
  echo "$tag: $(grep -E 'ms per step|unprofiled|rc ' $OUT/$tag.log | tr '\n' ' ')" | tee -a $OUT/summary.txt
}
[ -z "$ONLY_H200MOE" ] && for i in 1 2; do prof eager_old$i bench_old.py; prof eager_new$i bench.py; done
prof h200moe_new bench.py --config_file=configs/h200_moe.py --dataset= --profile_steps=5
prof h200moe_old bench_old.py --config_file=configs/h200_moe.py --dataset= --profile_steps=5
