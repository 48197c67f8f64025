#!/bin/bash
# Ran as .gpu/det/call3.sh on an H100, before sonic_kernels._timed; the pytest line below is what ran (pytest was
# installed there: its pip list test fell through to a failed install, harmless). Logs: docs/results/determinism/call3/.
# the new GPU tests of the deterministic switch, each expert backend
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name --format=csv,noheader
pip list 2>/dev/null | grep -i -E "^pytest " || pip install -q pytest 2>&1 | tail -1
timeout -s KILL 540 python -m pytest -q -rs tests/test_train.py -k "deterministic" > $OUT/pytest.log 2>&1; echo rc $? >> $OUT/pytest.log
tail -15 $OUT/pytest.log; echo "at $SECONDS s"
