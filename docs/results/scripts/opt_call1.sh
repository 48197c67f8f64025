#!/bin/bash
# call 1: the optimizer step's variants; the compiled step profiled; CUDA graphs; the GPU tests not yet run on this code
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/env.txt
python -c "import torch,triton;print(torch.__version__, triton.__version__)" >> $OUT/env.txt
timeout 100 python .gpu/optbench.py > $OUT/optbench.log 2>&1; echo "rc $?" >> $OUT/optbench.log
timeout 150 python .gpu/stepprof.py --opt fused --profile > $OUT/step_fused.log 2>&1; echo "rc $?" >> $OUT/step_fused.log
timeout 100 python .gpu/stepprof.py --opt triton > $OUT/step_triton.log 2>&1; echo "rc $?" >> $OUT/step_triton.log
timeout 120 python .gpu/stepprof.py --opt fused --mode reduce-overhead > $OUT/step_cg.log 2>&1; echo "rc $?" >> $OUT/step_cg.log
timeout 100 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "int64 or round or gpt_trains" > $OUT/pytest_rest.log 2>&1; echo "rc $?" >> $OUT/pytest_rest.log
cat $OUT/optbench.log; grep -h "opt=\|rc \|profiled\|warmup\|Error" $OUT/step_*.log; tail -3 $OUT/pytest_rest.log
