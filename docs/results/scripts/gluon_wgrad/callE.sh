#!/bin/bash
# h200_moe's compiled step (stepprof.py, 20 steps back to back, then a profile of 3): the Hopper weight
# gradients, then the Triton ones
export PYTHONPATH=$PWD
S=docs/results/scripts/stepprof.py
timeout -s KILL 110 python $S --profile --steps 20 > $OUT/step_gluon.log 2>&1; echo "rc $?" >> $OUT/step_gluon.log
grep -E "ms/step|wgrad|rc " $OUT/step_gluon.log
timeout -s KILL 110 python -c "
import sys, runpy, sonic_kernels
sonic_kernels.HOPPER_WGRAD = False
sys.argv = ['$S', '--profile', '--steps', '20']
runpy.run_path('$S', run_name='__main__')" > $OUT/step_triton.log 2>&1; echo "rc $?" >> $OUT/step_triton.log
grep -E "ms/step|wgrad|rc " $OUT/step_triton.log
