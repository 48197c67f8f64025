"""Triton's CPU interpreter and tl.histogram, as the routing metadata's count kernel uses it: two programs
store their histograms into interleaved columns of one int32 tensor. Triton 3.4 and 3.5's interpreter hands
back the histogram as int64 data typed int32, so each stored count writes 8 bytes and zeroes the neighbouring
column's entry; 3.6 and newer store int32. Run under the Triton to check (CPU only):
    python docs/results/scripts/install_floor/histogram_probe.py
"""
import os

os.environ['TRITON_INTERPRET'] = '1'
import torch
import triton
import triton.language as tl


@triton.jit
def counts_kernel(O, n_blk, NB: tl.constexpr):
    h = tl.histogram(tl.arange(0, NB), NB)        # one count in each bin
    tl.store(O + tl.arange(0, NB) * n_blk + tl.program_id(0), h + 100 * tl.program_id(0))


o = torch.zeros(8, 2, dtype=torch.int32)
counts_kernel[(2,)](o, 2, NB=8)
want = torch.tensor([[1] * 8, [101] * 8], dtype=torch.int32)
print(f"triton {triton.__version__}: columns {o.T.tolist()}:", "right" if torch.equal(o.T, want) else "WRONG")
