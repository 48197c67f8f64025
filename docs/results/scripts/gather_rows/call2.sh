#!/bin/bash
# From the repository root, on the machine call1.sh (gather_rows/) ran on, with .gpu/sk_pf now holding the chunked
# prefetch (every P steps, the next P steps' columns, P steps ahead): pfab.py again. Logs under $OUT.
export PYTHONPATH=$PWD
export TRITON_CACHE_DIR=$PWD/out_tcache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv,noheader > $OUT/env.log
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/env.log
cat $OUT/env.log
timeout -s KILL 240 python docs/results/scripts/gather_rows/pfab.py .gpu/sk_pf/sonic_kernels.py $OUT/pfab_chunked.json > $OUT/pfab_chunked.log 2>&1; echo rc $? >> $OUT/pfab_chunked.log
grep -v -i warn $OUT/pfab_chunked.log
