#!/bin/bash
# call 3: GPU tests of TritonAdamW, int64 offsets, GPT training on sonic; the compiled step with and without CUDA graphs
export PYTHONPATH=$PWD
(timeout 200 python -m pytest -q -p no:cacheprovider tests/test_model.py -k "adamw or clipped or optimizer" > $OUT/pytest_adamw.log 2>&1; echo "rc $?" >> $OUT/pytest_adamw.log)
(timeout 150 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "int64 or gpt_trains" > $OUT/pytest_sonic.log 2>&1; echo "rc $?" >> $OUT/pytest_sonic.log)
for i in 1 2; do
  for m in default reduce-overhead; do
    timeout 100 python .gpu/stepprof.py --mode $m > $OUT/step_${m}_$i.log 2>&1; echo "rc $?" >> $OUT/step_${m}_$i.log
  done
done
tail -2 $OUT/pytest_adamw.log $OUT/pytest_sonic.log; grep -h "opt=\|rc " $OUT/step_*.log
