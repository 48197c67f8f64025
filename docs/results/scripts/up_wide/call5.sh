#!/bin/bash
# From the repository root on one H200, with .gpu/sk_head carried (the last commit's sonic_kernels.py) and
# early_release.patch.txt applied to the tree's: the register split's share in call 4's result (upregs.py), then the
# GPU tests of the up-projection and the layer. Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 330 python docs/results/scripts/up_wide/upregs.py .gpu/sk_head/sonic_kernels.py $OUT/upregs.json \
  "before=before:176/88/72" "before 160/120/72=before:160/120/72" "early 176/120/40=after:176/120/40" \
  "early 160/120/72=after:160/120/72" > $OUT/upregs.log 2>&1; echo rc $? >> $OUT/upregs.log
grep -v -i warn $OUT/upregs.log
timeout -s KILL 200 python -m pytest -q -n 6 --timeout=190 -p no:cacheprovider tests/test_sonic.py -k "hopper_up or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
