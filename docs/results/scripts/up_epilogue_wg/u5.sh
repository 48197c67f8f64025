#!/bin/bash
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 130 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo "rc $?" >> $OUT/profile.log
grep -v "^frame" $OUT/profile.log | tail -n 22
timeout -s KILL 200 python -m pytest -q tests/test_bench.py -k "profile or part_of_their_op" > $OUT/t_profile.log 2>&1; echo "rc $?" >> $OUT/t_profile.log
tail -n 15 $OUT/t_profile.log
