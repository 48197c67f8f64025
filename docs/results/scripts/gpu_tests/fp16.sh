#!/bin/bash
# The fp16 GPU tests: the whole layer against the torch backend and float64 in fp16 (train.py's --dtype=float16),
# and the Gluon weight-gradient kernel in fp16 and bf16. Logs under $OUT.
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
K="hopper_wgrad_matches or matches_references or all_tokens_on_one or variable_experts"
python -c "import xdist" 2>/dev/null && X="-n 8" || X=""
timeout -s KILL 500 python -m pytest -q -p no:cacheprovider $X tests/test_sonic.py -k "$K" \
  > $OUT/fp16_tests.log 2>&1; echo rc $? >> $OUT/fp16_tests.log
tail -3 $OUT/fp16_tests.log
