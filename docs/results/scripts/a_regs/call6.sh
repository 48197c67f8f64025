#!/bin/bash
# Ran at 7B (SHAPES=7B) from ../kmode_gap/call1.sh on 2026-12-06; its log is ../../kmode_gap/call1/ncu_smem.log, where
# the shared-memory tables did not print. Nsight Compute's Memory Workload Analysis tables (shared memory's bank reads and writes and
# its share of peak) and Compute Workload Analysis (the pipes' utilisation) for dA' before the change that reads its
# rows of dO once a step into registers (.gpu/sk_tip/sonic_kernels.py = `git show eff1b70:sonic_kernels.py`, carried)
# and after it, and for cuBLAS's GEMM of its size, at 7B and 30B (SHAPES overrides), through
# ../gather_rows/ncu_bytes.py: how much of the change's gain the shared memory's bytes explain. One log under $OUT.
export TRITON_CACHE_DIR=$PWD/out_tcache
LOG=$OUT/ncu_smem.log
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $LOG
for shape in ${SHAPES:-7B 30B}; do
  for kind in before after cublas; do
    echo "=== $kind $shape" >> $LOG
    case $kind in cublas) k="regex:nvjet|gemm|xmma"; a=cublas;; *) k="regex:_down_bwd_hopper_kernel"; a=tree;; esac
    case $kind in before) pp=$PWD/.gpu/sk_tip:$PWD;; *) pp=$PWD;; esac
    PYTHONPATH=$pp timeout -s KILL 150 ncu --clock-control none --kernel-name "$k" --launch-skip 1 --launch-count 1 \
      --section MemoryWorkloadAnalysis_Tables --section ComputeWorkloadAnalysis --section SpeedOfLight \
      python docs/results/scripts/gather_rows/ncu_bytes.py $a $shape >> $LOG 2>&1; echo "rc $?" >> $LOG
  done
done
grep -E "^===|Shared|Duration|Pipe|Tensor|SM Busy|^rc" $LOG | head -n 80
