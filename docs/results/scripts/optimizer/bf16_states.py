"""AdamW's moments stored in bf16, their effect on training, on the CPU: train.py's default config
(the CPU branch) with torch's AdamW, each moment rounded to bf16 after every step, as a kernel that
loads and stores them in bf16 (and computes in fp32) would leave them. The fp32 master weights stay.

    python docs/results/scripts/optimizer/bf16_states.py VARIANT SEED OUT_DIR [train.py flags...]

VARIANT: fp32 (the reference), m (exp_avg in bf16), mv (both, round to nearest), mv_sr (both,
stochastic rounding). Prints train.py's log; the val losses are its 'step N:' lines."""
import runpy
import sys

import torch

variant, seed, out_dir, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
assert variant in ('fp32', 'm', 'mv', 'mv_sr'), variant
AdamW = torch.optim.AdamW
sr_gen = torch.Generator().manual_seed(seed)


def to_bf16(t, stochastic):
    """t rounded to bf16 and back to fp32 in place: to nearest, or stochastically (random low bits
    added to the fp32 pattern, then cut: unbiased for either sign, since floats are sign-magnitude)."""
    if not stochastic:
        t.copy_(t.to(torch.bfloat16).float())
        return
    bits = t.view(torch.int32)
    noise = torch.randint(0, 1 << 16, t.shape, generator=sr_gen, dtype=torch.int32)
    bits.copy_((bits + noise) & -65536)  # -65536 == ~0xFFFF: keep the upper 16 bits


class RoundedAdamW(AdamW):
    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group['params']:
                state = self.state.get(p)
                if not state:
                    continue
                to_bf16(state['exp_avg'], variant == 'mv_sr')
                if variant != 'm':
                    to_bf16(state['exp_avg_sq'], variant == 'mv_sr')
        return loss


if variant != 'fp32':
    torch.optim.AdamW = RoundedAdamW   # model.configure_optimizers builds torch.optim.AdamW on the CPU
sys.argv = ['train.py', 'configs/default.py', f'--seed={seed}', f'--out_dir={out_dir}', '--device=cpu',
            '--save_checkpoints=False', *extra]
sys.path.insert(0, '.')
runpy.run_path('train.py', run_name='__main__')
