#!/bin/bash
# The GPU tests of dA' and of the layer on the change (call2.sh's ran one at a time, too slow for its limit).
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout -s KILL 280 python -m pytest -q -n 8 --timeout=200 -p no:cacheprovider tests/test_sonic.py -k "hopper_down_bwd or \
down_bwd_kernel or sonic_matches_references or no_output_reads or memory_contract or deterministic or int64" \
  > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -n 4 $OUT/tests.log
echo "at $SECONDS s"
