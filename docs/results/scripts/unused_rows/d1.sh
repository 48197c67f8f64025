export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
timeout -s KILL 240 python -m pytest -q -p no:warnings tests/test_sonic.py -k "unwritten or torch_compile_fullgraph or hopper_wgrad or squares" > $OUT/t_fix.log 2>&1; echo rc $? >> $OUT/t_fix.log
tail -3 $OUT/t_fix.log
(cd .gpu/old && PYTHONPATH=$PWD timeout -s KILL 120 python -m pytest -q -p no:warnings tests/test_sonic.py -k "unwritten" > $OUT/t_before_fix.log 2>&1; echo rc $? >> $OUT/t_before_fix.log)
grep -E "non-finite|passed|failed|rc " $OUT/t_before_fix.log | tail -8
timeout -s KILL 200 python docs/results/scripts/token_order/tokorder.py $OUT/tokorder.json > $OUT/tokorder.log 2>&1; echo rc $? >> $OUT/tokorder.log
grep -v -i warn $OUT/tokorder.log | tail -160
