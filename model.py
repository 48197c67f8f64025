"""
A GPT whose feed-forward layers are fine-grained Mixture-of-Experts layers.

nanoGPT's shape (pre-norm blocks, causal attention through F.scaled_dot_product_attention, tied
embeddings) with the MLP replaced by MoE(config) from moe.py. GPTConfig holds every setting of the
model and checks the rules between them.
"""

import math
import inspect
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from moe import MoE, SwiGLU, EP_EXCHANGES, MOE_BACKENDS, ROUNDING_MODES, ROUTER_DTYPES, ROUTER_TYPES, sonic_kernels


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = False              # bias in Linears and LayerNorms (the router never has one)
    # experts
    n_expert: int = 64              # E, routed experts per MoE layer
    top_k: int = 8                  # K, experts per token
    expert_size: int = 256          # n, the SwiGLU width of one expert
    n_shared_experts: int = 0       # experts every token passes through (one dense SwiGLU)
    n_dense_layers: int = 0         # the first layers keep a dense MLP, as in DeepSeek
    dense_size: int = 0             # width of those dense MLPs; 0 -> top_k*expert_size (iso active)
    moe_backend: str = "torch"      # "torch" (reference) | "sonic" (Triton) | "grouped_mm" (peer)
    # routing (fp32, but for sonic's logits GEMM under bf16: router_dtype; the torch and grouped_mm backends'
    # fp32 logits GEMM runs on TF32 where torch allows it, as train.py and bench.py do)
    router_type: str = "softmax_topk"  # "softmax_topk" | "topk_softmax" (Qwen3) | "sigmoid" (DSv3)
    router_dtype: str = "bf16x2"    # sonic's router GEMM under bf16: "bf16x2" (weight as hi+lo bf16) | "bf16" | "fp32"
    norm_topk_prob: bool = True     # topk_softmax: renormalise the K selected probabilities
    aux_loss_coef: float = 0.01     # switch load-balancing loss; 0 turns it off
    z_loss_coef: float = 0.0        # router z-loss; 0 turns it off
    bias_update_rate: float = 1e-3  # sigmoid: aux-loss-free balancing bias step per optimizer step
    token_rounding: bool = False    # training only: round each expert's count to rounding_tile
    rounding_tile: int = 128        # M_tile; the sonic kernels' M tile
    rounding_mode: str = "nearest"  # "nearest" | "up" | "down"

    def __post_init__(self):
        def need(ok, msg):
            if not ok:
                raise ValueError(f"GPTConfig: {msg}")
        for k in ('block_size', 'vocab_size', 'n_layer', 'n_head', 'n_embd'):
            need(getattr(self, k) >= 1, f"{k}={getattr(self, k)} must be at least 1")
        need(self.n_embd % self.n_head == 0, f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        need(0 <= self.dropout < 1, f"dropout={self.dropout} must be in [0, 1)")
        need(1 <= self.top_k <= self.n_expert, f"top_k={self.top_k} must be in [1, n_expert={self.n_expert}]")
        need(self.expert_size > 0, f"expert_size={self.expert_size} must be positive")
        need(self.moe_backend in MOE_BACKENDS, f"moe_backend={self.moe_backend!r}; choose one of {MOE_BACKENDS}")
        need(self.router_type in ROUTER_TYPES, f"router_type={self.router_type!r}; choose one of {ROUTER_TYPES}")
        need(self.router_dtype in ROUTER_DTYPES, f"router_dtype={self.router_dtype!r}; choose one of {ROUTER_DTYPES}")
        need(self.rounding_mode in ROUNDING_MODES, f"rounding_mode={self.rounding_mode!r}; choose one of {ROUNDING_MODES}")
        need(self.rounding_tile >= 1, f"rounding_tile={self.rounding_tile} must be >= 1")
        need(0 <= self.n_dense_layers <= self.n_layer, f"n_dense_layers={self.n_dense_layers} must be in [0, n_layer={self.n_layer}]")
        for k in ('n_shared_experts', 'dense_size', 'aux_loss_coef', 'z_loss_coef', 'bias_update_rate'):
            need(getattr(self, k) >= 0, f"{k}={getattr(self, k)} must be 0 or more")


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no bias=False before 2.1)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class Block(nn.Module):

    def __init__(self, config, layer_idx):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        if layer_idx < config.n_dense_layers:
            self.mlp = SwiGLU(config.n_embd, config.dense_size or config.top_k * config.expert_size, config.bias)
        else:
            self.mlp = MoE(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.vocab_size is not None
        assert config.block_size is not None
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        # scaled init of the residual projections, per GPT-2
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight") or pn.endswith(".w2"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
            elif pn.endswith(".w1"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def moe_layers(self):
        return [b.mlp for b in self.transformer.h if isinstance(b.mlp, MoE)]

    def get_num_params(self, non_embedding=True):
        """Total parameters. The position embeddings are left out by default; the token embeddings
        count because they are tied to lm_head."""
        n = sum(p.numel() for p in self.parameters())
        c = self.config
        for moe in self.moe_layers():  # expert parallelism: count the experts other ranks hold
            # from shapes only: indexing an FSDP2-sharded weight is a collective, and only rank 0 prints
            n += (c.n_expert - moe.w1.shape[0]) * 3 * c.n_embd * c.expert_size
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def get_num_active_params(self, non_embedding=True):
        """Parameters one token touches: every MoE layer counts top_k of its n_expert experts."""
        c = self.config
        per_expert = 3 * c.n_embd * c.expert_size
        return self.get_num_params(non_embedding) - len(self.moe_layers()) * (c.n_expert - c.top_k) * per_expert

    def forward(self, idx, targets=None):
        device = idx.device
        b, t = idx.size()
        assert t <= self.config.block_size, f"Cannot forward sequence of length {t}, block size is only {self.config.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is not None:
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            if self.training:  # router losses steer training; eval reports pure cross-entropy
                for moe in self.moe_layers():
                    loss = loss + moe.aux_loss
        else:
            logits = self.lm_head(x[:, [-1], :])  # inference: only the last position
            loss = None
        return logits, loss

    def setup_expert_parallel(self, group, exchange="a2a", chunks=1):
        """Keep only this rank's slice of every MoE layer's experts: rank r of the expert-parallel
        group owns experts [r*E/ep, (r+1)*E/ep). Build the full model with one seed on every rank
        first, so the slices together are exactly the single-process model. exchange: how tokens
        travel (moe.EP_EXCHANGES): "a2a" each token to the ranks it chose (moe.experts_ep), "gather"
        every token to every rank, with static sizes and no host sync (moe.experts_ep_gather), in
        chunks pieces whose exchanges overlap the experts' work on the others."""
        import torch.distributed as dist
        ep, r = dist.get_world_size(group), dist.get_rank(group)
        if self.config.n_expert % ep:
            raise ValueError(f"n_expert={self.config.n_expert} is not divisible by ep_size={ep}; "
                             f"choose an ep_size that divides the number of experts")
        if exchange not in EP_EXCHANGES:
            raise ValueError(f"ep_exchange={exchange!r}; use one of {EP_EXCHANGES}")
        if exchange == "gather" and self.config.token_rounding:
            raise ValueError("ep_exchange='gather' needs plain top-K routing, and token_rounding=True gives each "
                             "rank its own number of pairs: use ep_exchange='a2a' or token_rounding=False")
        if chunks < 1 or (chunks > 1 and exchange != "gather"):
            raise ValueError(f"ep_chunks={chunks} with ep_exchange={exchange!r}; use ep_chunks >= 1, and more "
                             f"than 1 only with ep_exchange='gather' (the a2a exchange sizes each piece on the host)")
        E_local = self.config.n_expert // ep
        for moe in self.moe_layers():
            moe.w1 = nn.Parameter(moe.w1.data[r * E_local:(r + 1) * E_local].clone())
            moe.w2 = nn.Parameter(moe.w2.data[r * E_local:(r + 1) * E_local].clone())
            moe.ep_group, moe.ep_exchange, moe.ep_chunks = group, exchange, chunks

    def expert_param_names(self):
        """Names of the parameters that expert parallelism splits across ranks."""
        return [n for n, _ in self.named_parameters() if n.endswith(".w1") or n.endswith(".w2")]

    @torch.no_grad()
    def update_expert_bias(self):
        for moe in self.moe_layers():
            moe.update_expert_bias()

    def crop_block_size(self, block_size):
        assert block_size <= self.config.block_size
        self.config.block_size = block_size
        self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size])

    def optimizer_param_names(self):
        """Parameter names in the order configure_optimizers hands them to AdamW: matrices (expert
        stacks included) get weight decay, norms and biases do not. Checkpoints use it to map
        optimizer state to parameters when experts are split (EP) or sharded (FSDP2)."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        return [n for n, p in named if p.dim() >= 2] + [n for n, p in named if p.dim() < 2]

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, fused=True, state_dtype=torch.float32):
        """AdamW over the parameters, matrices with weight decay: TritonAdamW on CUDA (sm_80+) when
        fused, else torch's (fused where it can be). state_dtype=torch.bfloat16 (moments in bf16)
        only with TritonAdamW: ValueError otherwise."""
        params = dict(self.named_parameters())
        names = self.optimizer_param_names()
        decay = [params[n] for n in names if params[n].dim() >= 2]
        nodecay = [params[n] for n in names if params[n].dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": nodecay, "weight_decay": 0.0}]
        on_gpu = device_type == "cuda" and all(p.is_cuda for p in decay + nodecay)
        if fused and on_gpu and sonic_kernels is not None and torch.cuda.get_device_capability(decay[0].device) >= (8, 0):
            return TritonAdamW(groups, lr=learning_rate, betas=betas, state_dtype=state_dtype)  # Ampere and newer, as the sonic kernels
        if state_dtype != torch.float32:
            raise ValueError(f"AdamW's moments in {state_dtype} need TritonAdamW, which runs on CUDA GPUs "
                             f"of sm_80 or newer, without FSDP2")
        use_fused = fused and device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **(dict(fused=True) if use_fused else {}))

    def keep_expert_copies(self, optimizer, dtype):
        """Where they apply (sonic experts, autocast to a 16-bit dtype, an optimizer that writes copies:
        TritonAdamW, no expert parallelism), gives every MoE layer 16-bit copies of its fp32 expert
        weights (MoE.w1_copy, w2_copy), which the kernels read instead of casting the weights every
        forward (4 bytes read and 2 written a parameter), and has optimizer write them in its update
        pass (2 bytes a parameter: TritonAdamW.keep_copies). Returns whether it did. For a training loop
        that calls optimizer.refresh_copies() before its forwards (train.py)."""
        layers = self.moe_layers()
        if not (layers and self.config.moe_backend == "sonic" and dtype in (torch.bfloat16, torch.float16)
                and hasattr(optimizer, "keep_copies") and all(m.ep_group is None for m in layers)):
            return False
        copies = {}
        for m in layers:
            m.w1_copy = m.w1.detach().to(dtype)
            m.w2_copy = m.w2.detach().to(dtype)
            copies[m.w1], copies[m.w2] = m.w1_copy, m.w2_copy
        optimizer.keep_copies(copies)
        return True

    def flops_per_token(self):
        """Active training FLOPs per token (forward + backward), as in the PaLM appendix: 6 per
        active weight plus attention."""
        c = self.config
        hd = c.n_embd // c.n_head
        return 6 * self.get_num_active_params() + 12 * c.n_layer * c.n_head * hd * c.block_size

    def estimate_mfu(self, fwdbwd_per_iter, dt, peak_flops=989e12):
        """Model FLOPs utilisation over active FLOPs; the peak is dense bf16 of an H100/H200."""
        flops_per_iter = self.flops_per_token() * self.config.block_size * fwdbwd_per_iter
        return flops_per_iter / dt / peak_flops

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.config.block_size else idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :] / temperature
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
            idx = torch.cat((idx, idx_next), dim=1)
        return idx


class TritonAdamW(torch.optim.AdamW):
    """torch's AdamW, its state and checkpoints included, with the update in one pass of one Triton
    kernel launched once for all the parameters (sonic_kernels.adamw_): on h200_moe's 1.93B fp32
    parameters the step takes 13.2 against 15.6 ms for torch's fused AdamW, and with the clip folded
    in (grad_scale) it does not write the divided gradient back as the fused one does (docs/LOG.md,
    2026-12-01). What configure_optimizers gives for CUDA; the parameters must be plain fp32 tensors
    (not FSDP2's), and amsgrad, maximize and a tensor lr are not supported. An enabled GradScaler unscales the
    gradients itself (unscale_) before step().
    state_dtype=torch.bfloat16 keeps both moments in bf16, rounded to nearest after each update:
    8 bytes a parameter less to hold and to move. torch's load_state_dict casts a checkpoint's
    moments to the parameters' dtype; step() rounds them back.
    keep_copies({param: copy}) has each step also write the updated parameter, rounded, into its
    16-bit copy (GPT.keep_expert_copies); refresh_copies() mends a copy whose parameter changed by
    other means since."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, state_dtype=torch.float32):
        if state_dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"TritonAdamW's state_dtype={state_dtype}; use torch.float32 or torch.bfloat16")
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.state_dtype = state_dtype
        self.copies = {}          # parameter -> its 16-bit copy, written by each step
        self.copy_versions = {}   # parameter -> its version counter when its copy was last made equal to it

    def keep_copies(self, copies):
        """copies: {parameter: a 16-bit tensor of its shape}, made equal to the parameters now."""
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) not in known for p in copies):
            raise ValueError("keep_copies: a parameter this optimizer does not update")
        for p, c in copies.items():
            if not (c.dtype in (torch.bfloat16, torch.float16) and c.shape == p.shape and c.device == p.device
                    and c.is_contiguous()):
                raise ValueError(f"keep_copies: a copy must be a contiguous 16-bit tensor of its parameter's shape and "
                                 f"device; got {c.dtype} {tuple(c.shape)} on {c.device} for {tuple(p.shape)} on {p.device}")
        self.copies = dict(copies)
        self.copy_versions = {}
        self.refresh_copies()

    @torch.no_grad()
    def refresh_copies(self):
        """Rewrites every copy whose parameter changed since step() last wrote it: a load_state_dict or
        any other in-place change bumps the parameter's version counter, which step() records. Host
        work only when nothing changed; call it before a forward that reads the copies."""
        for p, c in self.copies.items():
            if self.copy_versions.get(p) != p._version:
                c.copy_(p)
                self.copy_versions[p] = p._version

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grad_scale = getattr(self, "grad_scale", None)  # set by clipped_fused_step
        if any(g["amsgrad"] or g["maximize"] or torch.is_tensor(g["lr"]) for g in self.param_groups):
            raise ValueError("TritonAdamW supports neither amsgrad, maximize nor a tensor lr: use torch.optim.AdamW")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, dtype=self.state_dtype, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=self.state_dtype, memory_format=torch.preserve_format)
                else:
                    if state["step"].device != p.device:  # a plain AdamW's checkpoint keeps the count on the CPU
                        state["step"] = state["step"].to(device=p.device, dtype=torch.float32)
                    for k in ("exp_avg", "exp_avg_sq"):  # a loaded checkpoint's, in the parameters' dtype
                        if state[k].dtype != self.state_dtype:
                            state[k] = state[k].to(self.state_dtype)
            if params:
                states = [self.state[p] for p in params]
                sonic_kernels.adamw_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                                     [s["exp_avg_sq"] for s in states], [s["step"] for s in states], float(group["lr"]),
                                     *map(float, group["betas"]), float(group["eps"]), float(group["weight_decay"]),
                                     grad_scale, [self.copies.get(p) for p in params])
                for p in params:
                    if p in self.copies:  # the copy is current again, whatever the step did to the version
                        self.copy_versions[p] = p._version
        return loss


def grad_norm(params, squares=None):
    """The total norm of params' gradients, as clip_grad_norm_ computes it, with no host sync. squares:
    a sonic_kernels.GradSquares, whose partial sums stand in for the gradients the kernels wrote and
    nothing changed since, so those are not read again; its other entries are dropped."""
    grads, parts = [], []
    for p in (p for p in params if p.grad is not None):
        sq = squares.take(p.grad) if squares is not None else None
        if sq is None:
            grads.append(p.grad)
        else:
            parts.append(sq)
    if squares is not None:
        squares.clear() # entries of gradients that never became .grad, or were summed over micro-steps
    norm = torch.nn.utils.get_total_norm(grads)  # 0 for no gradients
    if parts:
        norm = (norm.to(parts[0].device).float().square() + torch.cat(parts).sum()).sqrt()
    return norm


def clipped_fused_step(optimizer, max_norm, params=None, norm=None, squares=None):
    """optimizer.step() on gradients clipped to total norm max_norm, as clip_grad_norm_ and then
    step() would, for TritonAdamW or a fused Adam/AdamW. Their kernels divide each gradient by
    optimizer.grad_scale as they read it (the hook GradScaler unscales through), so clipping costs
    one read of the gradients for the norm instead of that plus a read and write of every gradient
    to scale it (fp32: 8 bytes a parameter saved). norm: the total gradient norm when the caller has
    it (expert parallelism sums it over ranks); else grad_norm(params, squares). No host sync. Not
    with an enabled GradScaler, which sets grad_scale and found_inf itself."""
    if not folds_clip(optimizer):
        raise ValueError("clipped_fused_step needs TritonAdamW or a fused optimizer (fused=True)")
    if getattr(optimizer, "grad_scale", None) is not None or getattr(optimizer, "found_inf", None) is not None:
        raise ValueError("the optimizer's grad_scale or found_inf is already set (an enabled GradScaler?)")
    if norm is None:
        norm = grad_norm(params, squares)
    # clip_grad_norm_'s coefficient min(1, max_norm / (norm + 1e-6)), as the divisor the kernel takes
    optimizer.grad_scale = ((norm.float() + 1e-6) / max_norm).clamp(min=1.0)
    try:
        optimizer.step()
    finally:
        del optimizer.grad_scale # a later plain step() must not divide again


def folds_clip(optimizer):
    """Whether optimizer's step divides the gradients by its grad_scale (clipped_fused_step)."""
    return isinstance(optimizer, TritonAdamW) or all(g.get("fused") for g in optimizer.param_groups)


def load_checkpoint(path, map_location):
    """The checkpoint train.py wrote at path, as a dict; or SystemExit with the one-line cause when
    it is corrupt, truncated or not one of train.py's. weights_only: a checkpoint holds only tensors
    and plain values, so loading runs no pickled code."""
    import re
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        missing = {"model", "optimizer", "model_args", "iter_num", "best_val_loss", "config", "rng"} - set(checkpoint)
        if missing:
            raise KeyError(f"no {', '.join(sorted(missing))}")
        return checkpoint
    except Exception as e:
        # torch buries the reason under advice to load with weights_only=False, which does not
        # apply here, and colours it for a terminal: keep the line that says why
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", l).strip() for l in str(e).splitlines() if l.strip()]
        why = next((l for l in lines if "Unsupported global" in l or "WeightsUnpickler error" in l), None)
        raise SystemExit(f"cannot read {path}: it is corrupt or not a checkpoint of train.py "
                         f"({type(e).__name__}: {why or (lines[0] if lines else '')}); restore a good copy, "
                         f"or train anew") from None
