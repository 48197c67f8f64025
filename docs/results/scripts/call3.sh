#!/bin/bash
# trees: repo root = main (c73ae51); .gpu/glue = fp32 grads + router glue; .gpu/full = glue + clip folded into AdamW
R=$PWD
export PYTHONPATH=
python data/stdlib/prepare.py > /dev/null 2>&1; for t in glue full; do cp data/stdlib/*.bin data/stdlib/meta.pkl .gpu/$t/data/stdlib/ 2>/dev/null; done
lay() { (cd $2 && PYTHONPATH=$PWD timeout $3 python $R/.gpu/layer.py $1 $4 $OUT/$1.json) >> $OUT/layer.log 2>&1; echo "rc $1 $?" >> $OUT/layer.log; }
lay main $R 100 1.4B,7B
lay glue $R/.gpu/glue 100 1.4B,7B
lay main2 $R 60 1.4B,7B
lay glue2 $R/.gpu/glue 60 1.4B,7B
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
trn() { (cd $2 && PYTHONPATH=$PWD timeout 130 python train.py configs/h200_moe.py $E --out_dir=/tmp/o_$1) > $OUT/train_$1.txt 2>&1; echo "rc $?" >> $OUT/train_$1.txt; }
trn main $R
trn full $R/.gpu/full
trn glue $R/.gpu/glue
(cd .gpu/full && PYTHONPATH=$PWD timeout 170 python -m pytest -q -x -p no:cacheprovider tests/test_router.py tests/test_sonic.py -k "not int64 and not rounding and not variable and not all_tokens" > $OUT/pytest_full.log 2>&1; echo "rc $?" >> $OUT/pytest_full.log)
cat $OUT/layer.log; grep -h "iter [0-9]*:\|rc \|Error" $OUT/train_*.txt | head -40; tail -3 $OUT/pytest_full.log
