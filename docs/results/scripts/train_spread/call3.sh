#!/bin/bash
# bench.py --mode=train, sonic, 40 timed steps: which steps are slow, and with Python's GC off
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
run() {  # $1 tag, $2 python prefix
  timeout 150 python $2 bench.py --mode=train --backends=sonic --steps=40 --out_dir=/tmp/$1 > $OUT/$1.log 2>&1
  echo "rc $? at $SECONDS s" >> $OUT/$1.log; grep -E "ms/step|rc " $OUT/$1.log
  python -c "import json; r = json.load(open('/tmp/$1/train.json'))['results'][0]; print('$1', r['step_ms_each'])" | tee -a $OUT/each.txt
}
cat > /tmp/nogc.py <<'PY'
import gc, os, runpy, sys
gc.disable()  # Python's cyclic collector off for the whole run
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # the script's folder, as plain python would
runpy.run_path(sys.argv[0], run_name='__main__')
PY
run gc1 ""; run nogc1 /tmp/nogc.py; run gc2 ""; run nogc2 /tmp/nogc.py
timeout 120 python -m pytest -q tests/test_bench.py -k test_train > $OUT/pytest.log 2>&1
echo "rc $? at $SECONDS s" >> $OUT/pytest.log; tail -3 $OUT/pytest.log
