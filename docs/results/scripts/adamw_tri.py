import torch, triton, triton.language as tl

@triton.jit
def _adamw_kernel(P, G, M, V, STEP, SCALE, numel, lr, beta1, beta2, eps, wd,
                  HAS_SCALE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    p = tl.load(P + offs, mask=mask)
    g = tl.load(G + offs, mask=mask).to(tl.float32)
    m = tl.load(M + offs, mask=mask)
    v = tl.load(V + offs, mask=mask)
    if HAS_SCALE:
        g = g / tl.load(SCALE)
    step = tl.load(STEP)
    bc1 = 1.0 - tl.exp(step * tl.log(beta1))
    bc2 = 1.0 - tl.exp(step * tl.log(beta2))
    p = p * (1.0 - lr * wd)
    m = m + (1.0 - beta1) * (g - m)
    v = v * beta2 + (1.0 - beta2) * g * g
    denom = tl.sqrt(v) / tl.sqrt(bc2) + eps
    p = p - (lr / bc1) * m / denom
    tl.store(P + offs, p, mask=mask)
    tl.store(M + offs, m, mask=mask)
    tl.store(V + offs, v, mask=mask)

def adamw_step(params, grads, ms, vs, steps, lr, beta1, beta2, eps, wd, scale=None, BLOCK=4096, num_warps=8):
    for p, g, m, v, s in zip(params, grads, ms, vs, steps):
        s += 1
        n = p.numel()
        _adamw_kernel[(triton.cdiv(n, BLOCK),)](p, g, m, v, s, scale if scale is not None else s, n, lr, beta1, beta2,
                                               eps, wd, HAS_SCALE=scale is not None, BLOCK=BLOCK, num_warps=num_warps)

@triton.jit
def _sumsq_kernel(G, OUT, numel, BLOCK: tl.constexpr, ITERS: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    acc = tl.zeros((BLOCK,), tl.float32)
    for i in range(ITERS):
        offs = (pid * ITERS + i) * BLOCK + tl.arange(0, BLOCK)
        g = tl.load(G + offs, mask=offs < numel, other=0.0).to(tl.float32)
        acc += g * g
    tl.store(OUT + pid, tl.sum(acc))
