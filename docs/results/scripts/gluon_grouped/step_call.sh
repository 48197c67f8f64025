#!/bin/bash
# From the root of a checkout of branch try/grouped-gluon, after both_call.sh, with .gpu/main/ a copy of
# main's tree (carried): h200_moe's 60 iterations on main and on the branch, alternated; layer.py on both;
# the kernels mode against cuBLAS on the branch
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1; cp -r data/stdlib/*.bin .gpu/main/data/stdlib/ 2>/dev/null
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
for k in main branch main branch; do
  if [ $k = main ]; then d=.gpu/main; else d=.; fi
  (cd $d && timeout -s KILL 100 python train.py configs/h200_moe.py $E > $OUT/train_$k.log 2>&1; echo "rc $?" >> $OUT/train_$k.log)
  echo "== $k"; grep -E "iter (10|30|50)|val|rc " $OUT/train_$k.log | cut -c1-100 | tail -4; cat $OUT/train_$k.log >> $OUT/train_all_$k.log
done
(cd .gpu/main && PYTHONPATH=$PWD timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer_main.json > $OUT/layer_main.log 2>&1)
timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer_branch.json > $OUT/layer_branch.log 2>&1
grep -h sonic $OUT/layer_main.log $OUT/layer_branch.log
timeout -s KILL 120 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --out_dir=$OUT/kernels \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels_vs_cublas.log 2>&1
grep -E "^_(down|wgrad|grouped|up)" $OUT/kernels_vs_cublas.log | cut -c1-120
