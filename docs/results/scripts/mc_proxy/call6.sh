#!/bin/bash
# From the repository root on one H200, with .gpu/t39.tar.xz carried (as call4.sh). Nsight Compute on upmc.py's kernel
# at 120B 2048/64/4 without its stores, on 2-CTA clusters (multicast) and on one CTA: its memory, L2 and warp-stall
# sections, to see where the pair's time goes. Logs under $OUT/ncu.
mkdir -p /tmp/t39 $OUT/ncu && tar -xJf .gpu/t39.tar.xz -C /tmp/t39
export PYTHONPATH=/tmp/t39:$PWD:$PWD/docs/results/scripts/mc_proxy OMP_NUM_THREADS=2
export TRITON_PTXAS_BLACKWELL_PATH=/tmp/t39/triton/backends/nvidia/bin/ptxas
SECS="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section LaunchStats"
for job in "2 0" "1 0"; do
  set -- $job; tag=ctas$1_store$2
  timeout -s KILL 150 ncu --clock-control none --kernel-name regex:"_up_mc_kernel" --launch-skip 1 --launch-count 1 $SECS -o $OUT/ncu/$tag python docs/results/scripts/mc_proxy/ncu_upmc.py $1 $2 > $OUT/ncu/$tag.out 2>&1; echo "rc $?" >> $OUT/ncu/$tag.out
  tail -2 $OUT/ncu/$tag.out
  timeout -s KILL 40 ncu --import $OUT/ncu/$tag.ncu-rep --page details > $OUT/ncu/$tag.details.txt 2>&1
  grep -E "Duration|L2 Cache Throughput|L1/TEX Cache Throughput|DRAM Throughput|Compute \(SM\) Throughput|Memory Throughput|Cluster|Stall|Issued Warp|Eligible Warps|No Eligible" $OUT/ncu/$tag.details.txt | head -24
done
rm -f $OUT/ncu/*.ncu-rep
