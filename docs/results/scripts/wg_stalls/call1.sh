#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): Nsight Compute's stall sampling per SASS
# instruction on the tree's weight gradients (bf16) at 7B and 30B; per partition (stalls.py), and the top
# instructions of the consumers (HGMMA) and of the producer (LDGSTS) (topinst.py). Logs under $OUT.
export PYTHONPATH=$PWD
S=docs/results/scripts
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
for run in "dW1 7B" "dW2 7B" "dW1 30B"; do
  set -- $run; tag=$1_$2
  timeout -s KILL 150 ncu --clock-control none --kernel-name regex:"_wgrad_hopper_kernel" --launch-skip 1 --launch-count 1 \
    --section WarpStateStats --section SourceCounters --section SpeedOfLight --section MemoryWorkloadAnalysis \
    --import-source yes -o /tmp/$tag python $S/wg_stalls/ncuwg.py $1 $2 > $OUT/ncu_$tag.out 2>&1; echo "rc $?" >> $OUT/ncu_$tag.out
  timeout -s KILL 60 ncu --import /tmp/$tag.ncu-rep --page source --csv --print-source sass > /tmp/$tag.sass.csv 2>&1
  timeout -s KILL 60 ncu --import /tmp/$tag.ncu-rep --page details > $OUT/details_$tag.txt 2>&1
  gzip -c /tmp/$tag.sass.csv > $OUT/ncu_$tag.sass.csv.gz
  { python $S/db_proxies/stalls.py /tmp/$tag.sass.csv; python $S/db_stalls/topinst.py /tmp/$tag.sass.csv HGMMA 25;
    python $S/db_stalls/topinst.py /tmp/$tag.sass.csv LDGSTS 15; } > $OUT/stalls_$tag.txt 2>&1
  echo "== $tag"; tail -1 $OUT/ncu_$tag.out; grep -E "Duration|SM Frequency|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|L2 Hit" $OUT/details_$tag.txt | head -8
  head -12 $OUT/stalls_$tag.txt
done
