#!/bin/bash
# expert copies: GPU train test and h200_moe A/B; bench.py --cuda_graphs: GPU test and the 1.4B / 7B layer
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm --format=csv > $OUT/gpu.txt 2>&1
python data/stdlib/prepare.py > $OUT/prep.log 2>&1
E2E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
for c in True False; do
  timeout -s KILL 110 python train.py configs/h200_moe.py $E2E --expert_copies=$c --out_dir=$OUT/e2e_$c > $OUT/e2e_$c.log 2>&1; echo "rc $?" >> $OUT/e2e_$c.log
  grep -E "^iter (10|20|30|40|50)|val loss|peak|memory" $OUT/e2e_$c.log | tail -8
done
timeout -s KILL 100 python -m pytest -q -x tests/test_bench.py -k "cuda_graphs" > $OUT/t_bench.log 2>&1; echo "rc $?" >> $OUT/t_bench.log
tail -n 3 $OUT/t_bench.log
timeout -s KILL 150 python bench.py --shapes=40960x768:256/128/8,24576x1536:256/128/8 --backends=sonic --cuda_graphs=True --check=False --out_dir=$OUT/bench_graphs > $OUT/bench_graphs.log 2>&1; echo "rc $?" >> $OUT/bench_graphs.log
tail -n 30 $OUT/bench_graphs.log
timeout -s KILL 190 python -m pytest -q -x tests/test_train.py -k "copies_train_as_the_cast" > $OUT/t_train.log 2>&1; echo "rc $?" >> $OUT/t_train.log
tail -n 3 $OUT/t_train.log
