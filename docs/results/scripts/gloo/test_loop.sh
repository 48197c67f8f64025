#!/bin/bash
# usage: REPO=<checkout> test_loop.sh N TAG: runs the EP-gather test set N times; /tmp/flake/TAG.summary counts failures
cd ${REPO:-.}; mkdir -p /tmp/flake
fails=0
for i in $(seq 1 $1); do
  if ! timeout 600 python -m pytest -q -x -p no:cacheprovider tests/test_distributed.py -k "test_expert_parallel_by_all_gather_matches_one_process" > /tmp/flake/$2_$i.log 2>&1; then
    fails=$((fails+1)); echo "run $i FAILED" >> /tmp/flake/$2.summary
  fi
  echo "run $i done fails=$fails $(tail -1 /tmp/flake/$2_$i.log)" >> /tmp/flake/$2.summary
done
