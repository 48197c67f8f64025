#!/bin/bash
# after the producers' shared helpers: the Hopper up-projection and dA' GPU tests, and both timed once
export PYTHONPATH=$PWD
timeout -s KILL 150 python -m pytest -q -x tests/test_sonic.py -k "hopper_up or hopper_down_bwd" > $OUT/t_hopper.log 2>&1; echo "rc $?" >> $OUT/t_hopper.log
tail -n 3 $OUT/t_hopper.log
timeout -s KILL 90 python - > $OUT/time.log 2>&1 <<'PY'
import torch
from triton.testing import do_bench
import sonic_kernels as sk
for name, (T, d, n, E, K) in {"h200_moe": (16384, 1536, 256, 128, 8), "1.4B": (40960, 768, 256, 128, 8), "30B": (32768, 4096, 256, 256, 16)}.items():
    g = torch.Generator(device="cuda").manual_seed(0)
    top, idx = torch.randn(T, E, device="cuda", generator=g).topk(K, -1)
    r = sk.routing_metadata(torch.arange(T, device="cuda").repeat_interleave(K), idx.flatten(), torch.softmax(top, -1).flatten(), T, E)
    x = torch.randn(T, d, device="cuda", dtype=torch.bfloat16)
    w1 = (torch.randn(E, d, 2 * n, device="cuda") / d ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(E, n, d, device="cuda") / n ** 0.5).to(torch.bfloat16)
    h = torch.randn(T * K, 2 * n, device="cuda", dtype=torch.bfloat16)
    for rnd in range(2):
        up = do_bench(lambda: sk.up_swiglu(x, w1, r), warmup=10, rep=150)
        db = do_bench(lambda: sk.down_bwd(x, w2, h, r), warmup=10, rep=150)
        print(f"{name} round {rnd}: up {up * 1e3:7.1f} us  dA' {db * 1e3:7.1f} us", flush=True)
PY
echo "rc $?" >> $OUT/time.log
cat $OUT/time.log
