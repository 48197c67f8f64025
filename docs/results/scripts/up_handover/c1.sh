export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
cat $OUT/gpu.txt
timeout -s KILL 300 python docs/results/scripts/up_handover/upho.py $OUT/upho.json > $OUT/upho.log 2>&1; echo rc $? >> $OUT/upho.log
grep -v Warn $OUT/upho.log | grep -v "^check" | tail -60; grep "^check" $OUT/upho.log | awk '{print $NF, $(NF-2)}' | sort | uniq -c
grep "^check" $OUT/upho.log | sort -t' ' -k2 | awk '$0 ~ /h_equal 0/' | head
timeout -s KILL 200 python docs/results/scripts/up_handover/upho.py $OUT/upho.json parts > $OUT/upho_parts.log 2>&1; echo rc $? >> $OUT/upho_parts.log
grep -v Warn $OUT/upho_parts.log | tail -40
timeout -s KILL 90 python -m pytest -q -x -p no:warnings tests/test_sonic.py -k "hopper_up" > $OUT/t_up.log 2>&1; echo rc $? >> $OUT/t_up.log
tail -2 $OUT/t_up.log
