# the 120B shapes' fwd+bwd column: bench.py's default rep (about five 37 ms runs) against rep=400 (about eleven), in one process each
export PYTHONPATH=$PWD
for rep in 100 400 100 400; do
  timeout -s KILL 120 python bench.py --backends=sonic --check=False --only=120B --rep=$rep --out_dir=$OUT/r$rep > $OUT/bench_120B_rep$rep.log 2>&1
  echo "rep $rep"; grep -A4 "^whole MoE" $OUT/bench_120B_rep$rep.log | tail -3 | cut -c1-130
done
rm -rf $OUT/r100 $OUT/r400
