#!/bin/bash
# The tip's train mode (the loads cast after the timed loop) on a GPU: 20 sonic steps and the mode's test. Run as one
# command line; its output, from the call's reply, is docs/results/train_spread/call9/output.txt
# The device's copy printed 331ccf1 for git log: its .git is not this checkout's; the files were the tip's
# (the row has the load).
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; git log --oneline -1
python bench.py --mode=train --backends=sonic --steps=20 --out_dir=/tmp/t 2>&1 | grep ms/step
python -c "import json; r=json.load(open('/tmp/t/train.json'))['results'][0]; print(r['step_ms_each']); print(r['load_max_over_mean_each'])"
timeout 150 python -m pytest -q tests/test_bench.py -k test_train 2>&1 | tail -1
