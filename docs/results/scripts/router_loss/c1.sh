export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv
timeout -s KILL 150 python -m pytest -q tests/test_router.py -x > $OUT/t_router.log 2>&1; echo rc $? >> $OUT/t_router.log; tail -3 $OUT/t_router.log
for i in 1 2; do
  SRC=$PWD/.gpu/old timeout -s KILL 100 python .gpu/hostab.py >> $OUT/hostab.log 2>&1
  timeout -s KILL 100 python .gpu/hostab.py >> $OUT/hostab.log 2>&1
done
grep -v Warn $OUT/hostab.log
