#!/bin/bash
# From the repository root on one H200: bench.py's step with the clip's norm from the weight-gradient kernels, as
# train.py takes it: the sonic profile tests, then h200_moe's compiled profile again. Logs to $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 60 python -m pytest -v -p no:cacheprovider tests/test_bench.py -k "sonic_layer or every_kernel" \
  > $OUT/profile_tests.log 2>&1; echo "rc $?" >> $OUT/profile_tests.log
grep -E "PASSED|FAILED|ERROR|SKIPPED|rc |^E " $OUT/profile_tests.log | tail -8
python data/stdlib/prepare.py > $OUT/prepare.log 2>&1
timeout -s KILL 110 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --profile_steps=5 \
  --out_dir=$OUT/compiled > $OUT/profile_compiled.log 2>&1; echo "rc $?" >> $OUT/profile_compiled.log
grep -v -i warn $OUT/profile_compiled.log | grep -E "ms per step|^[a-z].{20}[ 0-9.]{10}|norm|rc " | head -20
python -c "import json; r = json.load(open('$OUT/compiled/profile.json'))['results'][0]; print('norm_from_kernels', r['norm_from_kernels'])"
