#!/bin/bash
# The README's whole-layer table (layer.py: the MoE module, router and training defaults, at its four shapes), two
# passes on an H200 only. Logs under $OUT.
export TRITON_CACHE_DIR=$PWD/out_tcache; nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || exit 3; for p in 1 2; do timeout -s KILL 200 env PYTHONPATH=. python docs/results/scripts/layer.py sonic all $OUT/layer_$p.json > $OUT/layer_$p.log 2>&1; echo rc $? >> $OUT/layer_$p.log; tail -8 $OUT/layer_$p.log; [ $SECONDS -lt 200 ] || break; done
