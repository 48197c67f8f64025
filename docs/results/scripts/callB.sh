#!/bin/bash
export PYTHONPATH=$PWD
cp .gpu/train_head.py train_head.py
mkdir -p .gpu/headep && cp .gpu/head/moe.py .gpu/train_head.py .gpu/headep/ && cp model.py sonic_kernels.py configurator.py .gpu/headep/
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python data/stdlib/prepare.py > /dev/null 2>&1
E="--max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=1000 --eval_iters=2 --log_interval=10 --gradient_accumulation_steps=2 --save_checkpoints=False"
TR="python -m torch.distributed.run --standalone --nproc_per_node=2"
timeout 170 $TR train.py configs/h200_moe.py $E --out_dir=/tmp/d1 > $OUT/ddp_first.txt 2>&1
timeout 100 $TR train.py configs/h200_moe.py $E --ep_size=2 --compile=False --out_dir=/tmp/e1 > $OUT/ep2.txt 2>&1
PYTHONPATH=$PWD/.gpu/headep timeout 100 $TR .gpu/headep/train_head.py configs/h200_moe.py $E --data_dir=$PWD/data/stdlib --ep_size=2 --compile=False --out_dir=/tmp/e0 > $OUT/ep2_head.txt 2>&1
timeout 150 $TR train.py configs/h200_moe.py $E --ep_size=2 --compile=True --out_dir=/tmp/e2 > $OUT/ep2_compile.txt 2>&1
grep -h "iter 50\|Error" $OUT/*.txt | cut -c1-150 | head
