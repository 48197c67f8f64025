#!/bin/bash
R=$PWD
export PYTHONPATH=
(cd .gpu/full && PYTHONPATH=$PWD timeout 210 python -m pytest -q -p no:cacheprovider tests/test_router.py tests/test_sonic.py -k "not int64 and not round and not variable and not all_tokens" > $OUT/pytest_full.log 2>&1; echo "rc $?" >> $OUT/pytest_full.log)
python data/stdlib/prepare.py > /dev/null 2>&1; cp data/stdlib/*.bin data/stdlib/meta.pkl .gpu/full/data/stdlib/ 2>/dev/null
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
trn() { (cd $2 && PYTHONPATH=$PWD timeout 110 python train.py configs/h200_moe.py $E --out_dir=/tmp/o_$1) > $OUT/train_$1.txt 2>&1; echo "rc $?" >> $OUT/train_$1.txt; }
trn full2 $R/.gpu/full
trn main2 $R
(cd .gpu/full && PYTHONPATH=$PWD timeout 100 python $R/.gpu/layer.py full 1.4B,7B,30B,120B $OUT/full.json) > $OUT/layer.log 2>&1
tail -4 $OUT/pytest_full.log; grep -h "iter [1-5]0:\|rc " $OUT/train_*.txt; cat $OUT/layer.log
