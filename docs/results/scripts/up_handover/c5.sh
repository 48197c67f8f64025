export PYTHONPATH=$PWD
timeout -s KILL 330 python docs/results/scripts/evict/evict.py $OUT/evict.json > $OUT/evict.log 2>&1; echo rc $? >> $OUT/evict.log
grep -v Warn $OUT/evict.log
for v in base ef; do
  extra=""; [ $v = ef ] && extra="ef"
  timeout -s KILL 60 ncu --clock-control none --kernel-name regex:"_down_bwd_hopper_kernel" --launch-skip 1 --launch-count 1 --section SpeedOfLight --section MemoryWorkloadAnalysis python docs/results/scripts/up_handover/ncuprobe.py dA 7B $extra > $OUT/ncu_dA7B_$v.txt 2>&1; echo rc $? >> $OUT/ncu_dA7B_$v.txt
  grep -E "Duration|DRAM Throughput|L2 Hit Rate|Memory Throughput|rc " $OUT/ncu_dA7B_$v.txt
done
