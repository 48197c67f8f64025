#!/bin/bash
export PYTHONPATH=$PWD
python -c "import torch, triton; print(torch.__version__, triton.__version__)" > $OUT/env.txt 2>&1
T=tests/test_sonic.py
P="python -m pytest -v -p no:cacheprovider"
timeout -s KILL 60 $P "$T::test_tma_loads_match_pointer_loads" "$T::test_grouped_mm_any_number_of_programs" > $OUT/gpu_tests.log 2>&1; echo "rc1 $?" >> $OUT/gpu_tests.log
timeout -s KILL 150 $P "$T::test_int64_offsets" \
  "$T::test_sonic_matches_references[dtype1-0.01-1000-256-128-16-4]" "$T::test_sonic_matches_references[dtype1-0.01-2049-512-256-32-8]" \
  "$T::test_sonic_matches_references[dtype0-1e-05-300-48-32-4-2]" "$T::test_sonic_matches_references[dtype0-1e-05-1000-256-128-16-4]" \
  "$T::test_no_host_sync" "$T::test_deterministic" "$T::test_torch_compile_fullgraph" "$T::test_memory_contract" \
  >> $OUT/gpu_tests.log 2>&1; echo "rc2 $?" >> $OUT/gpu_tests.log
grep -E "PASSED|FAILED|ERROR|passed|failed|rc[12] |Error" $OUT/gpu_tests.log | tail -40
timeout -s KILL 170 python bench.py --mode=kernels --backends=sonic --kernels_top=12 --out_dir=$OUT/kernels \
  --shapes=40960x768:256/128/8,24576x1536:256/128/8,32768x4096:256/256/16,32768x4096:2048/64/4 > $OUT/kernels.log 2>&1; echo "rc $?" >> $OUT/kernels.log
grep -E "^_|^layer|^[0-9]+x|rc " $OUT/kernels.log | head -60
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --save_checkpoints=False --log_interval=10"
timeout -s KILL 180 python train.py configs/h200_moe.py $E > $OUT/train_h200_moe.log 2>&1; echo "rc $?" >> $OUT/train_h200_moe.log
grep -E "iter (10|20|30|40|50)|val|rc |MFU" $OUT/train_h200_moe.log | tail -12
