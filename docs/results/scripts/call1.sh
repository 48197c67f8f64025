#!/bin/bash
R=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv >> $OUT/env.txt
lay() { (cd $2 && PYTHONPATH=$PWD timeout $3 python $R/.gpu/layer.py $1 1.4B,7B,30B,120B $OUT/$1.json) >> $OUT/layer.log 2>&1; echo "rc $1 $?" >> $OUT/layer.log; }
lay main $R 150
lay both $R/.gpu/both 150
(cd .gpu/both && timeout 200 python -m pytest -q -x -p no:cacheprovider tests/test_router.py tests/test_sonic.py tests/test_sm90.py > $OUT/pytest_both.log 2>&1; echo "rc $?" >> $OUT/pytest_both.log)
lay tma $R/.gpu/tma 120
lay op $R/.gpu/op 120
tail -3 $OUT/pytest_both.log; cat $OUT/layer.log
