#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): dA''s epilogue IO, its bytes in DRAM against
# its requests (proxies.py: h loads and dH / A' stores off, or aimed at each program's own rows, which stay in L2), at
# the README's four shapes. Logs under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 300 python docs/results/scripts/db_proxies/proxies.py $OUT/proxies.json \
  "no h loads;no stores;no epilogue IO;h from L2;stores to L2;IO in L2" > $OUT/proxies.log 2>&1; echo rc $? >> $OUT/proxies.log
grep -v -i warn $OUT/proxies.log
