# from the repository root of a checkout of 888e4a8 (the kernel options this times), on one H200. Prediction (written before any run): wide k32 s6 5-15%
# less time than the tree at 7B, h200_moe, 30B and 120B, 0-5% at 1.4B; the halves alone (k64 s3) 0-5% more (a
# consumer waits on the epilogue); wide k32 s7 halves the best at 7B and h200_moe (10-20% less); narrow k32 s8
# 3-10% less than narrow k64 s4. Every output equal to its width's tree config
export PYTHONPATH=$PWD
timeout -s KILL 200 python -m pytest -q -p no:warnings tests/test_sonic.py -k "ring_variants" > $OUT/t_ring.log 2>&1; echo rc $? >> $OUT/t_ring.log
tail -3 $OUT/t_ring.log
timeout -s KILL 330 python docs/results/scripts/db_k32/dbk32.py $OUT/dbk32.json > $OUT/dbk32.log 2>&1; echo rc $? >> $OUT/dbk32.log
grep -v -i warn $OUT/dbk32.log | tail -75
