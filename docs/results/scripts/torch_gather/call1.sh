#!/usr/bin/env bash
# One H200: the probe, then the model's tests (torch backend included) on the GPU. Logs in $OUT.
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/gpu.txt
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
PYTHONPATH=. python docs/results/scripts/torch_gather/probe.py > $OUT/probe.log 2>&1
python -m pytest -q -x tests/test_model.py > $OUT/test_model.log 2>&1
tail -n 3 $OUT/probe.log $OUT/test_model.log
