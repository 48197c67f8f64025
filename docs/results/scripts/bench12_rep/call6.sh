export PYTHONPATH=$PWD
timeout -s KILL 170 python -m pytest -q -p no:cacheprovider tests/test_sonic.py -k "routing_metadata or custom_ops or bad_shapes or every_router or deterministic or memory_contract or no_host_sync or sonic_matches_references" > $OUT/tests.log 2>&1; echo "tests rc $?" >> $OUT/tests.log
tail -3 $OUT/tests.log
SRC=$PWD/.gpu/old timeout -s KILL 60 python .gpu/host_fwd.py > $OUT/host_old.log 2>&1
timeout -s KILL 60 python .gpu/host_fwd.py > $OUT/host_new.log 2>&1
grep -h "src\|whole forward\|pair_tok None\|None" $OUT/host_old.log $OUT/host_new.log
S=40960x768:1024/32/2,40960x768:256/128/8,24576x1536:512/64/4,24576x1536:1024/32/2
for p in 1 2; do
  timeout -s KILL 50 python .gpu/old/bench.py --backends=sonic --check=False --shapes=$S --out_dir=$OUT/old$p > $OUT/bench_old$p.log 2>&1
  timeout -s KILL 50 python bench.py --backends=sonic --check=False --shapes=$S --out_dir=$OUT/new$p > $OUT/bench_new$p.log 2>&1
  for v in old new; do echo "== $v$p"; grep -A5 "^whole MoE" $OUT/bench_$v$p.log | tail -4 | cut -c1-110; done
done
