# The default run: a small fine-grained MoE GPT on the embedded stdlib corpus (bytes, vocab 256).
# Adapts to the machine:
#   - no GPU: 4 layers, 16 experts of width 64, top-4; 600 iterations in a few minutes on 2 CPU cores;
#   - a GPU:  8 layers, d=512, 64 experts of width 128, top-8, block 1024, bf16, the Triton 'sonic'
#             experts under torch.compile; 1000 iterations (~65M tokens), a few minutes on one
#             H100/H200.
# Launch:
#   python data/stdlib/prepare.py && python train.py configs/default.py
#   torchrun --standalone --nproc_per_node=4 train.py configs/default.py   # several GPUs: 2 or 4, which
#       divide the global gradient_accumulation_steps=4 below; on 8, add --gradient_accumulation_steps=8
#       (twice the tokens per iteration) or --batch_size=8 --gradient_accumulation_steps=8 (the same)
import torch

out_dir = 'out-default'
dataset = 'stdlib'
wandb_run_name = 'default'

if torch.cuda.is_available():
    n_layer = 8
    n_head = 8
    n_embd = 512
    n_expert = 64
    top_k = 8
    expert_size = 128
    moe_backend = 'sonic'
    block_size = 1024
    batch_size = 16
    gradient_accumulation_steps = 4 # global: 64 sequences, 65k tokens per iteration
    learning_rate = 1e-3
    # 1000 iterations are about 7 passes over the corpus's train split. This model memorises it past that:
    # over 3000 iterations its val loss bottomed at 0.81 near iteration 1000 and rose to 1.57 by the
    # end, the train loss at 0.08 (H100, docs/LOG.md, 2026-12-05)
    max_iters = 1000
    lr_decay_iters = 1000
    min_lr = 1e-4
    warmup_iters = 100
    eval_interval = 250
    eval_iters = 50
    log_interval = 10
    # the host's kernel launches bound this small model's step: on an H200 compiling took a 16k-token
    # micro-step from a median 49 to 39 ms, and replaying the compiled step as CUDA graphs
    # ('reduce-overhead') took an iteration of four from 163-173 to 51-54 ms (docs/LOG.md, 2026-11-29
    # and 2026-12-01)
    compile = True
    compile_mode = 'reduce-overhead'
else:
    n_layer = 4
    n_head = 4
    n_embd = 128
    n_expert = 16
    top_k = 4
    expert_size = 64
    moe_backend = 'torch' # the readable reference; the Triton kernels need a GPU
    block_size = 128
    batch_size = 16
    gradient_accumulation_steps = 1
    learning_rate = 2e-3 # a tiny model tolerates a high rate
    max_iters = 600
    lr_decay_iters = 600
    min_lr = 2e-4
    warmup_iters = 50
    eval_interval = 200
    eval_iters = 10
    log_interval = 25
