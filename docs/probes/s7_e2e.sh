set -x
ARGS="--mode=train --backends=sonic --n_embd=1536 --n_expert=128 --batch_size=8 --block_size=2048 --steps=20"
timeout 150 python -m pytest -q tests/test_sonic.py -k "round or variable" > $OUT/pytest_gpu_round.log 2>&1; tail -2 $OUT/pytest_gpu_round.log
(timeout 200 python docs/probes/probe_route.py compare layer > $OUT/probe_route_r3.log 2>&1; echo rc $? >> $OUT/probe_route_r3.log)
grep -E "round_tokens|identical|differ|top-K / rounded|module " $OUT/probe_route_r3.log
timeout 150 python bench.py $ARGS --routing=both --out_dir=$OUT/train > $OUT/bench_train_fused.log 2>&1; tail -3 $OUT/bench_train_fused.log
timeout 120 python - $ARGS --routing=rounding --out_dir=$OUT/train_v1 > $OUT/bench_train_v1.log 2>&1 <<'PY'
import sys, runpy
sys.path.insert(0, 'docs/probes'); argv = sys.argv[1:]; sys.argv = ['probe_route.py', 'cpu', 'none']
import probe_route, model
model.round_tokens = lambda idx, g, p, tile, mode, fused=False: probe_route.round_tokens_v1(idx, g, p, tile, mode)
sys.argv = ['bench.py'] + argv
runpy.run_path('bench.py', run_name='__main__')
PY
tail -2 $OUT/bench_train_v1.log
