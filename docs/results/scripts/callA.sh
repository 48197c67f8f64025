#!/bin/bash
export PYTHONPATH=$PWD
nvidia-smi -L > $OUT/env.txt; nvidia-smi topo -m >> $OUT/env.txt
CUDA_VISIBLE_DEVICES=0 python .gpu/lprof.py 1.4B,7B > $OUT/lprof.log 2>&1
CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$PWD/.gpu/head python .gpu/lprof.py 1.4B > $OUT/lprof_head.log 2>&1
CUDA_VISIBLE_DEVICES=0 python .gpu/cprof.py compile > $OUT/cprof_compile.log 2>&1
cp .gpu/train_head.py train_head.py
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --log_interval=10 --gradient_accumulation_steps=2 --save_checkpoints=False"
TR="python -m torch.distributed.run --standalone --nproc_per_node=2"
CUDA_VISIBLE_DEVICES=0 timeout 150 python train.py configs/h200_moe.py $E --out_dir=/tmp/g1 > $OUT/gpu1.txt 2>&1
timeout 150 $TR train.py configs/h200_moe.py $E --out_dir=/tmp/d1 > $OUT/ddp.txt 2>&1
timeout 150 $TR train.py configs/h200_moe.py $E --out_dir=/tmp/d2 --grad_reduce_dtype=bfloat16 > $OUT/ddp_bf16.txt 2>&1
timeout 150 $TR train_head.py configs/h200_moe.py $E --compile=True --out_dir=/tmp/d0 > $OUT/ddp_head.txt 2>&1
grep -h "iter 50\|Error\|error" $OUT/*.txt | head -20
