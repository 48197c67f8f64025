#!/bin/bash
# From the repository root on one H200, with .gpu/sk_head carried (the last commit's sonic_kernels.py): the
# up-projection's epilogue in 32-row chunks (the tree) against HEAD's 16 (up_wide/upab.py: bit for bit at six shapes,
# timed in alternating rounds), then the GPU tests of the up-projection and the layer. Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 300 python docs/results/scripts/up_wide/upab.py .gpu/sk_head/sonic_kernels.py $OUT/upab.json > $OUT/upab.log 2>&1; echo rc $? >> $OUT/upab.log
grep -v -i warn $OUT/upab.log | tail -45
timeout -s KILL 200 python -m pytest -q -n 6 --timeout=190 -p no:cacheprovider tests/test_sonic.py -k "hopper_up or layer" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
