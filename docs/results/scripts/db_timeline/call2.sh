#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6). dbtl.py again, now with each partition's
# waits summed over an item; then Nsight Compute's stall sampling on the tree's dA' kernel at 1.4B and 7B, per SASS
# instruction (the source page as CSV). Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/db_timeline
timeout -s KILL 200 python docs/results/scripts/db_timeline/dbtl.py $OUT/dbtl.json 1.4B 7B 120B > $OUT/dbtl.log 2>&1; echo rc $? >> $OUT/dbtl.log
grep -v -i warn $OUT/dbtl.log | grep -v "producer: item top\|first slot free ->\|item top -> first\|drain and\|hand-over free ->"
mkdir -p $OUT/ncu
for shape in 1.4B 7B; do
  timeout -s KILL 120 ncu --clock-control none --kernel-name regex:"_down_bwd_hopper_kernel" --launch-skip 1 --launch-count 1 \
    --section WarpStateStats --section SourceCounters --section SpeedOfLight --import-source yes -o $OUT/ncu/dA_$shape \
    python docs/results/scripts/up_handover/ncuprobe.py dA $shape > $OUT/ncu/dA_$shape.out 2>&1; echo "rc $?" >> $OUT/ncu/dA_$shape.out
  tail -2 $OUT/ncu/dA_$shape.out
  timeout -s KILL 60 ncu --import $OUT/ncu/dA_$shape.ncu-rep --page details > $OUT/ncu/dA_$shape.details.txt 2>&1
  timeout -s KILL 60 ncu --import $OUT/ncu/dA_$shape.ncu-rep --page source --csv --print-source sass > $OUT/ncu/dA_$shape.sass.csv 2>&1
  rm -f $OUT/ncu/dA_$shape.ncu-rep
  ls -la $OUT/ncu | tail -2; head -c 600 $OUT/ncu/dA_$shape.sass.csv; echo
done
