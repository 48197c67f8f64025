#!/bin/bash
export PYTHONPATH=$PWD
timeout -s KILL 120 python -m pytest -q -x tests/test_bench.py -k "layer_as_cuda_graphs" > $OUT/t_bench.log 2>&1; echo "rc $?" >> $OUT/t_bench.log
tail -n 3 $OUT/t_bench.log
timeout -s KILL 150 python bench.py --shapes=40960x768:256/128/8,24576x1536:256/128/8 --backends=sonic --cuda_graphs=True --check=False --out_dir=$OUT/bench_graphs > $OUT/bench_graphs.log 2>&1; echo "rc $?" >> $OUT/bench_graphs.log
grep -v "^frame" $OUT/bench_graphs.log | tail -n 32
timeout -s KILL 170 python -m pytest -q tests/test_sonic.py -k "dtype1 and (sonic_matches_references or all_tokens_on_one or variable_experts)" > $OUT/t_layer.log 2>&1; echo "rc $?" >> $OUT/t_layer.log
tail -n 3 $OUT/t_layer.log
