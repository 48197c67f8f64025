# A fine-grained MoE sized to fill one H200 (141 GB): 12 layers, d=1536, 128 experts of width 256,
# top-8, block 2048, on the embedded stdlib corpus. 1.9B parameters, 0.23B active per token.
# A short run (300 iterations) to measure training throughput, MFU and memory of the expert
# backends, not to reach a good loss. Launch:
#   python data/stdlib/prepare.py && python train.py configs/h200_moe.py
#   python train.py configs/h200_moe.py --moe_backend=grouped_mm   # the peer baseline
#   python train.py configs/h200_moe.py --moe_backend=torch        # the slow reference

out_dir = 'out-h200'
wandb_run_name = 'h200-moe'
dataset = 'stdlib'

n_layer = 12
n_head = 12
n_embd = 1536
n_expert = 128
top_k = 8
expert_size = 256
moe_backend = 'sonic'

block_size = 2048
batch_size = 8 # 16,384 tokens per iteration
gradient_accumulation_steps = 1

learning_rate = 3e-4
max_iters = 300
lr_decay_iters = 300
min_lr = 3e-5
warmup_iters = 30

compile = True # the README's step times are compiled (its profile has the eager step beside them); the first step compiles for ~30 s
log_interval = 10
eval_interval = 100
eval_iters = 20
