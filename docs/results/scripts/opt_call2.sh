#!/bin/bash
# call 2: h200_moe with TritonAdamW against the tree before it (train.py as a user runs it); GPU tests
R=$PWD
export PYTHONPATH=
python data/stdlib/prepare.py > /dev/null 2>&1; cp data/stdlib/*.bin data/stdlib/meta.pkl .gpu/base/data/stdlib/
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
trn() { (cd $2 && PYTHONPATH=$PWD timeout 130 python train.py configs/h200_moe.py $E --out_dir=/tmp/o_$1) > $OUT/train_$1.txt 2>&1; echo "rc $?" >> $OUT/train_$1.txt; }
trn base1 $R/.gpu/base
trn new1 $R
trn new2 $R
(PYTHONPATH=$PWD timeout 140 python -m pytest -q -p no:cacheprovider tests/test_model.py -k "adamw or clipped or optimizer" tests/test_sonic.py::test_int64_offsets > $OUT/pytest_adamw.log 2>&1; echo "rc $?" >> $OUT/pytest_adamw.log)
grep -h "iter [1-6]0:\|rc \|val loss\|Error\|error" $OUT/train_*.txt | head -40; tail -3 $OUT/pytest_adamw.log
