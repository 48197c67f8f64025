#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): dA''s proxies (proxies.py) at the README's four
# shapes; then Nsight Compute's stall sampling per SASS instruction on the tree's dA' at 7B and 120B and on the
# up-projection at 7B (the same producer code, near cuBLAS there), summed per partition (stalls.py). Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts/db_proxies
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 240 python $S/proxies.py $OUT/proxies.json > $OUT/proxies.log 2>&1; echo rc $? >> $OUT/proxies.log
grep -v -i warn $OUT/proxies.log
for run in "dA 7B" "dA 120B" "up 7B"; do
  set -- $run; tag=$1_$2
  timeout -s KILL 150 ncu --clock-control none --kernel-name regex:"_(down_bwd|up)_hopper_kernel" --launch-skip 1 --launch-count 1 \
    --section WarpStateStats --section SourceCounters --section SpeedOfLight --import-source yes -o /tmp/$tag \
    python docs/results/scripts/up_handover/ncuprobe.py $1 $2 > $OUT/ncu_$tag.out 2>&1; echo "rc $?" >> $OUT/ncu_$tag.out
  timeout -s KILL 60 ncu --import /tmp/$tag.ncu-rep --page details > $OUT/ncu_$tag.details.txt 2>&1
  timeout -s KILL 60 ncu --import /tmp/$tag.ncu-rep --page source --csv --print-source sass > /tmp/$tag.sass.csv 2>&1
  gzip -c /tmp/$tag.sass.csv > $OUT/ncu_$tag.sass.csv.gz
  python $S/stalls.py /tmp/$tag.sass.csv > $OUT/stalls_$tag.txt 2>&1
  echo "== $tag"; tail -1 $OUT/ncu_$tag.out; cat $OUT/stalls_$tag.txt
done
