#!/bin/bash
# h200_moe's 60 iterations alternating the two-warpgroup dA' kernel (.gpu/sk_main.py, main before the change,
# copied over a copy of the tree) and the epilogue-warpgroup one (the tree); then layer.py twice
export PYTHONPATH=$PWD
python data/stdlib/prepare.py > /dev/null 2>&1
rm -rf /tmp/old && mkdir /tmp/old && cp -r *.py configs data /tmp/old/ && cp .gpu/sk_main.py /tmp/old/sonic_kernels.py
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
for k in old new old new; do
  if [ $k = old ]; then d=/tmp/old; else d=$PWD; fi
  (cd $d && timeout -s KILL 150 python train.py configs/h200_moe.py $E > $OUT/train_$k.log 2>&1; echo "rc $?" >> $OUT/train_$k.log)
  echo "== $k"; grep -E "iter (10|20|30|40|50)|val|rc " $OUT/train_$k.log | cut -c1-100 | tail -7
  cat $OUT/train_$k.log >> $OUT/train_all_$k.log
done
for p in 1 2; do timeout -s KILL 120 python docs/results/scripts/layer.py sonic all $OUT/layer$p.json >> $OUT/layer.log 2>&1; echo "rc $?" >> $OUT/layer.log; done
grep -v Warn $OUT/layer.log
