#!/bin/bash
# two H200s: one GPU (two micro-steps), DDP and EP=2, compiled, 60 iterations, the same global batch
export PYTHONPATH=$PWD
nvidia-smi -L > $OUT/env.txt
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --log_interval=10 --gradient_accumulation_steps=2 --save_checkpoints=False"
TR="python -m torch.distributed.run --standalone --nproc_per_node=2"
CUDA_VISIBLE_DEVICES=0 timeout 110 python train.py configs/h200_moe.py $E --out_dir=/tmp/g1 > $OUT/gpu1.txt 2>&1; echo "rc $?" >> $OUT/gpu1.txt
timeout 130 $TR train.py configs/h200_moe.py $E --out_dir=/tmp/d1 > $OUT/ddp.txt 2>&1; echo "rc $?" >> $OUT/ddp.txt
timeout 130 $TR train.py configs/h200_moe.py $E --ep_size=2 --out_dir=/tmp/e2 > $OUT/ep2.txt 2>&1; echo "rc $?" >> $OUT/ep2.txt
grep -h "iter [2-5]0:\|val loss\|rc \|Error" $OUT/*.txt | cut -c1-160 | head -30
