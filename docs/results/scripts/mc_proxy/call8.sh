#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6). clocks_all.py: the SM clock and power beside the
# up-projection, dA' and cuBLAS at the README's four shapes. Logs under $OUT.
export PYTHONPATH=$PWD:$PWD/docs/results/scripts/mc_proxy
timeout -s KILL 240 python docs/results/scripts/mc_proxy/clocks_all.py $OUT/clocks_all.json > $OUT/clocks_all.log 2>&1; echo rc $? >> $OUT/clocks_all.log
grep -v -i warn $OUT/clocks_all.log | tail -34
