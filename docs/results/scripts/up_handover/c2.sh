export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q -p no:warnings tests/test_sonic.py -k "hopper_up or squares or compile or memory_contract or deterministic" > $OUT/t_sonic.log 2>&1; echo rc $? >> $OUT/t_sonic.log
tail -3 $OUT/t_sonic.log
timeout -s KILL 100 python -m pytest -q -p no:warnings tests/test_model.py tests/test_train.py -k "clipped_fused_step or kernel_grad_norm" > $OUT/t_norm.log 2>&1; echo rc $? >> $OUT/t_norm.log
tail -3 $OUT/t_norm.log
timeout -s KILL 200 python docs/results/scripts/up_handover/order.py $OUT/order.json > $OUT/order.log 2>&1; echo rc $? >> $OUT/order.log
grep -v Warn $OUT/order.log | tail -50
timeout -s KILL 150 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1; echo rc $? >> $OUT/kernels.log
grep -v Warn $OUT/kernels.log | grep -i -E "cublas|shape|up|rc " | tail -40
