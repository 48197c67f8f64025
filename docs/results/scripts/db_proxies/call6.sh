#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): Nsight Compute's throughputs (speed of light,
# memory workload) for cuBLAS's dense GEMM of dA''s size, the tree's dA' and its "no stores" and "no epilogue IO"
# proxies, at 7B and 1.4B. One log under $OUT.
export PYTHONPATH=$PWD
for shape in 7B 1.4B; do
  for kind in cublas tree nostores noio; do
    echo "=== $kind $shape" >> $OUT/ncu_l2.log
    if [ $kind = cublas ]; then k="regex:nvjet|gemm|xmma"; else k="regex:_down_bwd_hopper_kernel"; fi
    timeout -s KILL 120 ncu --clock-control none --kernel-name "$k" --launch-skip 1 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis \
      python docs/results/scripts/db_proxies/ncu_l2.py $kind $shape >> $OUT/ncu_l2.log 2>&1; echo "rc $?" >> $OUT/ncu_l2.log
  done
done
grep -E "^===|  [a-z_]+.*\(|Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|L2 Hit Rate|Mem Busy|Max Bandwidth|Compute \(SM\)|SM Frequency|^rc" $OUT/ncu_l2.log
