#!/bin/bash
# Ran as .gpu/v1/call.sh on an H100 (2026-12-07), at 1ea8563: sonic_kernels._timed on a GPU. Logs:
# docs/results/determinism/call4/. The last pytest line was cut by its timeout (rc 124), not by a failure.
# _timed on a GPU: the autotuners under deterministic algorithms and under their ordinary timing
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
python -c "import torch, triton; print(torch.__version__, triton.__version__)" | tee -a $OUT/gpu.txt
timeout 200 python -m pytest -q tests/test_sonic.py -k "deterministic or matches_references" -rs > $OUT/sonic_det.log 2>&1; echo "rc $?" >> $OUT/sonic_det.log
tail -5 $OUT/sonic_det.log
timeout 200 python -m pytest -q tests/test_train.py -k deterministic -rs > $OUT/train_det.log 2>&1; echo "rc $?" >> $OUT/train_det.log
tail -3 $OUT/train_det.log
timeout 150 python -m pytest -q -x tests/test_sonic.py -k "not deterministic and not matches_references" > $OUT/sonic_rest.log 2>&1; echo "rc $?" >> $OUT/sonic_rest.log
tail -4 $OUT/sonic_rest.log
