# A GPT-2-small-scale fine-grained MoE on OpenWebText: 12 layers, d=768, 128 experts of width 256,
# top-8 (active MLP width 8*256 = 2048 per token; 0.97B parameters in all, 125M active).
# Hardware: one node of 8 H100/H200 GPUs; ~0.5M tokens per iteration, as nanoGPT's GPT-2 run.
# Launch:
#   python data/openwebtext/prepare.py    # once; needs network, datasets and tiktoken
#   torchrun --standalone --nproc_per_node=8 train.py configs/owt_moe_gpt2s.py
# gradient_accumulation_steps is global (40, split among the ranks), so fewer GPUs keep the same
# ~0.5M tokens per iteration with more micro-steps each; the GPU count must divide 40 (1, 2, 4, 5, 8).

out_dir = 'out-owt-moe-gpt2s'
wandb_log = False # True to log to wandb
wandb_project = 'owt'
wandb_run_name = 'moe-gpt2s-e128-k8'

dataset = 'openwebtext'
# 12 batch size * 1024 block size * 40 gradaccum = 491,520 tokens per iteration
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 5 * 8

n_layer = 12
n_head = 12
n_embd = 768
n_expert = 128
top_k = 8
expert_size = 256
moe_backend = 'sonic'
aux_loss_coef = 0.01

# ~49B tokens
learning_rate = 6e-4
max_iters = 100000
lr_decay_iters = 100000
min_lr = 6e-5
warmup_iters = 2000
weight_decay = 1e-1

eval_interval = 1000
eval_iters = 200
log_interval = 10
