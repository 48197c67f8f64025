#!/bin/bash
# From the repository root on one H200: bench.py's profile of h200_moe's compiled step again, with the clip's
# gradient norm in make_train_step's optimizer range (the first call put its kernel in 'other'), and the
# compiled profile's test on the GPU. Logs to $OUT.
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > $OUT/prepare.log 2>&1
timeout -s KILL 170 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --profile_steps=5 \
  --out_dir=$OUT/compiled > $OUT/profile_compiled.log 2>&1; echo "rc $?" >> $OUT/profile_compiled.log
grep -v -i warn $OUT/profile_compiled.log | tail -30
timeout -s KILL 90 python -m pytest -v -p no:cacheprovider tests/test_bench.py -k "compiled" \
  > $OUT/profile_tests.log 2>&1; echo "rc $?" >> $OUT/profile_tests.log
grep -E "PASSED|FAILED|ERROR|SKIPPED|rc " $OUT/profile_tests.log | tail -6
