#!/bin/bash
# From the repository root at the commit that added the Gluon grouped GEMM, with .gpu/main/ a copy of the
# tree before it (carried): what ran for docs/results/e2e/gluon_grouped and the layer_main/branch logs
# h200_moe A/B (main in .gpu/main vs this checkout), alternated x3; then layer.py on both, twice
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1; cp data/stdlib/*.bin data/stdlib/*.pkl .gpu/main/data/stdlib/
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
for k in main branch main branch main branch; do
  if [ $k = main ]; then d=.gpu/main; else d=.; fi
  (cd $d && PYTHONPATH=$PWD timeout -s KILL 100 python train.py configs/h200_moe.py $E > $OUT/train_$k.log 2>&1; echo "rc $?" >> $OUT/train_$k.log)
  echo "== $k"; grep -E "iter (10|30|50)|val|rc " $OUT/train_$k.log | cut -c1-100 | tail -5; cat $OUT/train_$k.log >> $OUT/train_all_$k.log
done
for r in 1 2; do
(cd .gpu/main && PYTHONPATH=$PWD timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer_main$r.json > $OUT/layer_main$r.log 2>&1)
timeout -s KILL 100 python docs/results/scripts/layer.py sonic all $OUT/layer_branch$r.json > $OUT/layer_branch$r.log 2>&1
echo "== main $r"; grep -h sonic $OUT/layer_main$r.log; echo "== branch $r"; grep -h sonic $OUT/layer_branch$r.log
done
