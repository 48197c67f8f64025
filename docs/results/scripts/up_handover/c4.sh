export PYTHONPATH=$PWD
mkdir -p $OUT/ncu
which ncu > $OUT/ncu/which.txt 2>&1; ncu --version >> $OUT/ncu/which.txt 2>&1
SECS="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis --section LaunchStats --section Occupancy --section SourceCounters"
for job in "dA 1.4B" "dA 7B" "up 120B" "dA 120B"; do
  set -- $job; tag=$1_$2
  timeout -s KILL 90 ncu --clock-control none --kernel-name regex:"_(down_bwd|up)_hopper_kernel" --launch-skip 1 --launch-count 1 $SECS --import-source yes -o $OUT/ncu/$tag python docs/results/scripts/up_handover/ncuprobe.py $1 $2 > $OUT/ncu/$tag.out 2>&1; echo "rc $?" >> $OUT/ncu/$tag.out
  tail -3 $OUT/ncu/$tag.out
  timeout -s KILL 30 ncu --import $OUT/ncu/$tag.ncu-rep --page details > $OUT/ncu/$tag.details.txt 2>&1
  timeout -s KILL 30 ncu --import $OUT/ncu/$tag.ncu-rep --page source --csv --print-source sass > $OUT/ncu/$tag.sass.csv 2>&1
  ls -la $OUT/ncu/ | tail -3
done
grep -E "Duration|Memory Throughput|DRAM Throughput|L2 Cache Throughput|Compute \(SM\)|Issue Slots Busy|No Eligible|Warp Cycles Per Issued" $OUT/ncu/*.details.txt | head -60
cd $OUT && tar czf ncu.tgz ncu && rm -rf ncu && cd - > /dev/null
ls -la $OUT
for p in 1 2; do
  timeout -s KILL 90 python docs/results/scripts/layer.py sonic all $OUT/layer_$p.json > $OUT/layer_$p.log 2>&1; echo "rc $?" >> $OUT/layer_$p.log
  grep -v Warn $OUT/layer_$p.log | tail -8
done
