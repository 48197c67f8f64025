export PYTHONPATH=$PWD
timeout -s KILL 160 python -m pytest -q -x -p no:warnings tests/test_train.py -k "cuda_graphs_train" > $OUT/t_graphs.log 2>&1; echo rc $? >> $OUT/t_graphs.log
tail -2 $OUT/t_graphs.log
timeout -s KILL 230 python -m pytest -q -p no:warnings tests/test_sonic.py -k "torch_compile_fullgraph or deterministic or grad_squares_stand_in" > $OUT/t_layer2.log 2>&1; echo rc $? >> $OUT/t_layer2.log
tail -2 $OUT/t_layer2.log
