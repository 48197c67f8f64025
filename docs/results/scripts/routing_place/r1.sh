# routing metadata in two launches after the count (scatter, tile map and token offsets as one): GPU tests,
# host time old vs new, and bench.py's profile of h200_moe with sonic's routing as its own part
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader
timeout -s KILL 170 python -m pytest -q -x tests/test_sonic.py -k "routing_metadata or empty_batch or custom_ops or memory_contract or (dtype1 and sonic_matches_references) or deterministic" > $OUT/t_sonic.log 2>&1; echo rc $? >> $OUT/t_sonic.log; tail -3 $OUT/t_sonic.log
export ONLY="1.4B 256/128/8,1.4B 1024/32/2,7B 256/128/8"
for i in 1 2; do
  SRC=$PWD/.gpu/old timeout -s KILL 80 python .gpu/hostab.py >> $OUT/hostab.log 2>&1
  timeout -s KILL 80 python .gpu/hostab.py >> $OUT/hostab.log 2>&1
done
grep -v Warn $OUT/hostab.log
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
timeout -s KILL 150 python bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic --steps=5 --out_dir=$OUT/profile > $OUT/profile.log 2>&1; echo rc $? >> $OUT/profile.log
grep -v Warn $OUT/profile.log | tail -40
