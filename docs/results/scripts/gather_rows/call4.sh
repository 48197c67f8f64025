#!/bin/bash
# From the repository root on the machine the device lends (torch 2.11 + Triton 3.6, the image's): Nsight Compute's
# DRAM bytes read and written, L2 hit rate and duration for cuBLAS's dense GEMM of dA''s size, the tree's dA' and the
# window proxy (ncu_bytes.py), at 30B and 7B; SHAPES and KINDS, where set, name others (KINDS="up_cublas up_tree
# up_window": the same for the up-projection). One log under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > $OUT/ncu_bytes.log
M=dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sector_hit_rate.pct,gpu__time_duration.sum
for shape in ${SHAPES:-30B 7B}; do
  for kind in ${KINDS:-cublas tree window}; do
    echo "=== $kind $shape" >> $OUT/ncu_bytes.log
    case $kind in *cublas) k="regex:nvjet|gemm|xmma";; up_*) k="regex:_up_hopper_kernel";; *) k="regex:_down_bwd_hopper_kernel";; esac
    timeout -s KILL 100 ncu --clock-control none --kernel-name "$k" --launch-skip 1 --launch-count 1 --metrics $M \
      python docs/results/scripts/gather_rows/ncu_bytes.py $kind $shape >> $OUT/ncu_bytes.log 2>&1; echo "rc $?" >> $OUT/ncu_bytes.log
  done
done
grep -E "^===|dram__|lts__|gpu__time|^rc|H100|H200" $OUT/ncu_bytes.log
