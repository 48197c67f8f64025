#!/bin/bash
# DDP, EP=2 and FSDP2 on two GPUs of one host against one GPU, on the end-to-end config
# (configs/h200_moe.py, sonic backend). Every run takes the same global batch, 32,768 tokens:
# two ranks of 8 x 2048, or one GPU with 2 micro-steps, so the loss curves can be compared.
#   bash docs/scaling/run.sh 2gpu   # the three two-GPU modes
#   bash docs/scaling/run.sh 1gpu   # the one-GPU reference
#   bash docs/scaling/run.sh fsdp2  # one mode: gpu1, ddp, ddp100, ep2, ep2gather, ep2chunks, fsdp2 or fsdp2keep
#   bash docs/scaling/run.sh rounding  # token rounding, DDP against EP=2, 60 iterations
#   bash docs/scaling/run.sh profile   # a DDP step's parts and its exposed communication (bench.py, compiled as the config)
# EXTRA adds settings to every run (EXTRA='--max_iters=60 --lr_decay_iters=60'). Logs go to $OUT (default scaling_out/). NVLink multicast stays off, as in the runs the README quotes.
set -u
OUT=${OUT:-scaling_out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
PY=${PY:-python3}
CFG="configs/h200_moe.py --gradient_accumulation_steps=2 --save_checkpoints=False ${EXTRA:-}"  # a 23 GB checkpoint is not what we time

[ -f data/stdlib/train.bin ] || $PY data/stdlib/prepare.py > "$OUT/prepare.txt" 2>&1

run() { # name, time limit (s), command...
    local name=$1 limit=$2; shift 2
    echo "== $name: $*" | tee "$OUT/$name.txt"
    local t0=$(date +%s)
    timeout "$limit" "$@" --out_dir="out-$name" >> "$OUT/$name.txt" 2>&1
    echo "== $name: exit $? after $(( $(date +%s) - t0 ))s" | tee -a "$OUT/$name.txt"
    cp "out-$name/log.jsonl" "$OUT/${name}_log.jsonl" 2>/dev/null
    tail -4 "$OUT/$name.txt"
}

TR="$PY -m torch.distributed.run --standalone --nproc_per_node=2"
env_txt() { { nvidia-smi -L; nvidia-smi topo -m; $PY -c 'import torch; print(torch.__version__, torch.cuda.device_count())'; } > "$OUT/env.txt" 2>&1; }
gpu1() { CUDA_VISIBLE_DEVICES=0 run gpu1 160 $PY train.py $CFG; }
ep2() { run ep2 150 $TR train.py $CFG --ep_size=2; }
ep2gather() { run ep2gather 150 $TR train.py $CFG --ep_size=2 --ep_exchange=gather; }   # no host sync, all-gather
ep2chunks() { run ep2chunks 150 $TR train.py $CFG --ep_size=2 --ep_exchange=gather --ep_chunks=4; }  # exchanges overlap experts
ddp() { run ddp 130 $TR train.py $CFG; }
ddp100() { run ddp100 130 $TR train.py $CFG --ddp_bucket_mb=100; }                        # 4x DDP's default buckets
fsdp2() { run fsdp2 160 $TR train.py $CFG --fsdp=True; }
fsdp2keep() { run fsdp2keep 160 $TR train.py $CFG --fsdp=True --fsdp_reshard=False; }   # one all-gather a step
# token rounding under EP against DDP: each rank rounds its own tokens in both, so they must agree
R="--token_rounding=True --max_iters=60 --lr_decay_iters=60 --warmup_iters=10 --eval_interval=30 --eval_iters=10 --log_interval=5"
rounding() { run ddp_rounding 120 $TR train.py $CFG $R; run ep2_rounding 120 $TR train.py $CFG $R --ep_size=2; }
# bench.py takes no out_dir-style run() flags of train.py's; it writes profile.json and profile.png to $OUT/profile
profile() { timeout 300 $TR bench.py --mode=profile --config_file=configs/h200_moe.py --backends=sonic \
            --gradient_accumulation_steps=2 --out_dir="$OUT/profile" > "$OUT/profile.txt" 2>&1; tail -22 "$OUT/profile.txt"; }

case ${1:-2gpu} in
2gpu) env_txt; ep2; ddp; fsdp2 ;;
1gpu) gpu1 ;;
gpu1|ep2|ep2gather|ep2chunks|ddp|ddp100|fsdp2|fsdp2keep|rounding|profile) $1 ;;
*) echo "usage: bash docs/scaling/run.sh 2gpu|1gpu|gpu1|ep2|ep2gather|ep2chunks|ddp|ddp100|fsdp2|fsdp2keep|rounding|profile"; exit 2 ;;
esac
