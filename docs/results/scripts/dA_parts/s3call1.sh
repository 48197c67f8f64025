#!/bin/bash
# tests of the expert copies on the H200, then the dA' parts experiment
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 60 python -m pytest -q -x tests/test_model.py -k "copies or triton_adamw" > $OUT/t_model.log 2>&1; echo "rc $?" >> $OUT/t_model.log
timeout -s KILL 60 python -m pytest -q -x tests/test_sonic.py -k "reads_its_expert_copies or fp32_master" > $OUT/t_sonic.log 2>&1; echo "rc $?" >> $OUT/t_sonic.log
timeout -s KILL 230 python -m pytest -q -x tests/test_train.py -k "copies_train_as_the_cast" > $OUT/t_train.log 2>&1; echo "rc $?" >> $OUT/t_train.log
tail -3 $OUT/t_*.log
timeout -s KILL 200 python .gpu/dbparts.py > $OUT/dbparts.log 2>&1; echo "rc $?" >> $OUT/dbparts.log
cat $OUT/dbparts.log | tail -40
