#!/bin/bash
R=$PWD
(cd .gpu/dab && PYTHONPATH=$PWD timeout 240 python $R/.gpu/dsweep.py) > $OUT/dsweep.log 2>&1
lay() { (cd $2 && PYTHONPATH=$PWD timeout $3 python $R/.gpu/layer.py $1 $4 $OUT/$1.json) >> $OUT/layer.log 2>&1; echo "rc $1 $?" >> $OUT/layer.log; }
lay main $R 100 1.4B,7B,30B
lay dab $R/.gpu/dabfull 150 1.4B,7B,30B
lay main2 $R 100 1.4B,7B
lay dab2 $R/.gpu/dabfull 100 1.4B,7B
cat $OUT/dsweep.log $OUT/layer.log
