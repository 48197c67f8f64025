#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): Nsight Compute's stall sampling per SASS
# instruction on the tree's dA' at 1.4B and 7B and the up-projection at 1.4B; per partition (stalls.py) and the
# epilogue warpgroup's top instructions (topinst.py). Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
for run in "dA 1.4B" "dA 7B" "up 1.4B"; do
  set -- $run; tag=$1_$2
  timeout -s KILL 150 ncu --clock-control none --kernel-name regex:"_(down_bwd|up)_hopper_kernel" --launch-skip 1 --launch-count 1 \
    --section WarpStateStats --section SourceCounters --section SpeedOfLight --import-source yes -o /tmp/$tag \
    python $S/up_handover/ncuprobe.py $1 $2 > $OUT/ncu_$tag.out 2>&1; echo "rc $?" >> $OUT/ncu_$tag.out
  timeout -s KILL 60 ncu --import /tmp/$tag.ncu-rep --page source --csv --print-source sass > /tmp/$tag.sass.csv 2>&1
  gzip -c /tmp/$tag.sass.csv > $OUT/ncu_$tag.sass.csv.gz
  { python $S/db_proxies/stalls.py /tmp/$tag.sass.csv; python $S/db_stalls/topinst.py /tmp/$tag.sass.csv MUFU 40; } > $OUT/stalls_$tag.txt 2>&1
  echo "== $tag"; tail -1 $OUT/ncu_$tag.out; head -60 $OUT/stalls_$tag.txt
done
