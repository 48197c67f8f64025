#!/bin/bash
# From the repository root on one H100 or H200 (torch 2.11 + Triton 3.6): the tree's dA' float64 tests with
# 128-column items, run again and again until the time runs out, to look for a race that fails one of them now and
# then. Logs under $OUT: env.log, rounds.log (one line a round: its pass and fail counts), fails.log.
export PYTHONPATH=$PWD TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > $OUT/env.log
end=$((SECONDS + ${1:-150}))
i=0
while [ $SECONDS -lt $end ]; do
  timeout -s KILL $((end - SECONDS + 5)) python -m pytest -q -p no:cacheprovider tests/test_sonic.py \
    -k "hopper_down_bwd_matches_float64 and 128cols" > $OUT/round.log 2>&1
  echo "round $i: $(tail -1 $OUT/round.log)" >> $OUT/rounds.log
  grep -E "^FAILED|Error:" $OUT/round.log >> $OUT/fails.log
  i=$((i + 1))
done
cat $OUT/env.log $OUT/rounds.log; touch $OUT/fails.log; wc -l < $OUT/fails.log
rm -f $OUT/round.log
