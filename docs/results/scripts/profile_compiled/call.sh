#!/bin/bash
# From the repository root on one H200: bench.py's profile of h200_moe's compiled step (the config's compile, as
# train.py runs it) and of the eager one, and the profile tests on the GPU. Logs to $OUT.
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > $OUT/prepare.log 2>&1
P="python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --profile_steps=5"
timeout -s KILL 240 $P --out_dir=$OUT/compiled > $OUT/profile_compiled.log 2>&1; echo "rc $?" >> $OUT/profile_compiled.log
grep -v -i warn $OUT/profile_compiled.log | tail -28
timeout -s KILL 150 $P --compile=False --out_dir=$OUT/eager > $OUT/profile_eager.log 2>&1; echo "rc $?" >> $OUT/profile_eager.log
grep -v -i warn $OUT/profile_eager.log | tail -24
timeout -s KILL 150 python -m pytest -v -p no:cacheprovider tests/test_bench.py -k "profile or compiled" \
  > $OUT/profile_tests.log 2>&1; echo "rc $?" >> $OUT/profile_tests.log
grep -E "PASSED|FAILED|ERROR|SKIPPED|rc " $OUT/profile_tests.log | tail -14
