#!/bin/bash
# From the root of a checkout of 85fe8fc (the branch try/wgrad-heavy-first, cherry-picked to main since), after: mkdir -p .gpu && git show f312cae:sonic_kernels.py > .gpu/sk_main.py
# (run with carry=[".gpu"]): the heavy-first order against main's and the Triton kernel, the Hopper GPU
# tests on this code, then h200_moe's compiled step with each kernel (stepprof.py's profile)
export PYTHONPATH=$PWD
timeout -s KILL 150 python docs/results/scripts/gluon_wgrad/heavy_first_probe.py $OUT/heavy_first.json > $OUT/heavy_first.log 2>&1
echo "rc $?" >> $OUT/heavy_first.log; cat $OUT/heavy_first.log
timeout -s KILL 120 python -m pytest -v -p no:cacheprovider tests/test_sonic.py -k hopper > $OUT/gpu_tests.log 2>&1
echo "rc $?" >> $OUT/gpu_tests.log; grep -E "PASSED|FAILED|passed|failed|rc " $OUT/gpu_tests.log | tail -16
S=docs/results/scripts/stepprof.py
for mode in None False; do
  timeout -s KILL 110 python -c "
import sys, runpy, sonic_kernels
sonic_kernels.HOPPER_WGRAD = $mode
sys.argv = ['$S', '--profile', '--steps', '20']
runpy.run_path('$S', run_name='__main__')" > $OUT/step_$mode.log 2>&1; echo "rc $?" >> $OUT/step_$mode.log
  grep -E "ms/step|wgrad|rc " $OUT/step_$mode.log
done
