#!/usr/bin/env bash
# Session 7's token-rounding runs on one H200, logs under $OUT (docs/PERF.md, predictions 17-18).
# Sections, in the order given: tests | probe | train | train_v1. Example:
#   OUT=/tmp/s7 bash docs/probes/s7_e2e.sh tests probe train train_v1
#   tests     the GPU tests of the rounding paths (test_sonic.py -k "round or variable")
#   probe     docs/probes/probe_route.py compare layer
#   train     bench.py --mode=train at configs/h200_moe.py's widths (E=128, or E=... in the environment),
#             top-K and rounding
#   train_v1  the same, rounding only, with round_tokens v1 (kept in probe_route.py) patched in
OUT=${OUT:-.}; mkdir -p "$OUT"
ARGS="--mode=train --backends=sonic --n_embd=1536 --n_expert=${E:-128} --batch_size=8 --block_size=2048 --steps=20"
for what in "$@"; do case $what in
  tests) timeout 150 python -m pytest -q tests/test_sonic.py -k "round or variable" > $OUT/pytest_gpu_round.log 2>&1
         tail -2 $OUT/pytest_gpu_round.log ;;
  probe) timeout 200 python docs/probes/probe_route.py compare layer > $OUT/probe_route.log 2>&1
         grep -E "round_tokens|identical|differ|top-K / rounded|module " $OUT/probe_route.log ;;
  train) timeout 150 python bench.py $ARGS --routing=both --out_dir=$OUT/train > $OUT/bench_train.log 2>&1
         tail -3 $OUT/bench_train.log ;;
  train_v1) timeout 120 python - $ARGS --routing=rounding --out_dir=$OUT/train_v1 > $OUT/bench_train_v1.log 2>&1 <<'PY'
import sys, runpy
sys.path.insert(0, 'docs/probes'); argv = sys.argv[1:]; sys.argv = ['probe_route.py', 'cpu', 'none']
import probe_route, model
model.round_tokens = lambda idx, g, p, tile, mode, fused=False: probe_route.round_tokens_v1(idx, g, p, tile, mode)
sys.argv = ['bench.py'] + argv
runpy.run_path('bench.py', run_name='__main__')
PY
         tail -2 $OUT/bench_train_v1.log ;;
  *) echo "unknown section $what"; exit 2 ;;
esac; done
