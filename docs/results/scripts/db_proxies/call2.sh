#!/bin/bash
# From the repository root on one H200 (its torch 2.11 + Triton 3.6): dA''s epilogue IO split (proxies.py: no h
# loads, no stores, neither); its loads / all its accesses marked evict_first, and the tiles in token order (B = 2)
# with and without them (real variants, compared bit for bit with the tree's), at the README's four shapes. Logs
# under $OUT.
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 300 python docs/results/scripts/db_proxies/proxies.py $OUT/proxies.json \
  "no h loads;no stores;no epilogue IO;h evict_first;all evict_first;tokens B=2;tokens B=2, all evict_first" > $OUT/proxies.log 2>&1; echo rc $? >> $OUT/proxies.log
grep -v -i warn $OUT/proxies.log
