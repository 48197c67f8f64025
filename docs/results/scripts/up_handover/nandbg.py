# the rounding compile test's eager and compiled grads, several times, Hopper up-projection on and off:
# where do non-finite values appear?
import sys, torch
sys.path.insert(0, 'tests')
import conftest  # noqa
from test_sonic import make_moe, grads_of
import sonic_kernels as sk
names = ["out", "dx", "dw1", "dw2", "drouter"]
for trial in range(3):
    for mode in (None, False):
        sk.HOPPER_UP = mode
        torch.manual_seed(1234 + trial)
        moe, x = make_moe(512, 128, 64, 8, 2, torch.bfloat16, "sonic", token_rounding=True, rounding_tile=16)
        g = torch.randn(x.shape, device="cuda")
        eager = grads_of(moe, x, g)
        bad = {n: int((~torch.isfinite(t)).sum()) for n, t in zip(names, eager)}
        print(f"trial {trial} HOPPER_UP={mode} eager non-finite: {bad}", flush=True)
        if trial == 0:
            moe.zero_grad(); x.grad = None
            comp = grads_of(torch.compile(moe, fullgraph=True), x, g)
            bad = {n: int((~torch.isfinite(t)).sum()) for n, t in zip(names, comp)}
            diff = {n: float((a.double() - b.double()).norm() / b.double().norm()) for n, a, b in zip(names, comp, eager)}
            print(f"  compiled non-finite: {bad} rel: {diff}", flush=True)
