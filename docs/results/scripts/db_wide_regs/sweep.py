"""dA''s 256-column Hopper kernel (DB_WIDE_CONFIG) compiled for sm_90 with other register splits, under the
Triton that runs this (CPU only: Triton's own ptxas): registers and spilled bytes per split.
    python docs/results/scripts/db_wide_regs/sweep.py
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(REPO), str(REPO / 'tests')]
import triton
import sonic_kernels as sk
from test_sm90 import hopper_launches, report

SPLITS = [(160, 160, 32), (168, 144, 32), (176, 128, 32), (176, 120, 40), (152, 176, 32), (168, 136, 40),
          (160, 152, 40), (184, 112, 32)]   # consumer, epilogue, producer: 2 C + E + P = 512
name, kern, args, _ = next(c for c in hopper_launches() if c[0] == 'down_bwd_hopper')
cfgs = [triton.Config({**sk.DB_WIDE_CONFIG, 'CONSUMER_REGS': c, 'EPILOGUE_REGS': e, 'PRODUCER_REGS': p},
                      num_warps=4, num_stages=1) for c, e, p in SPLITS]
print(f"triton {triton.__version__}")
for r in report(90, [(name, kern, args, cfgs)]):
    print(r['config'], r.get('error') or f"regs {r['regs']} spill {r['spill_bytes']} B smem {r['smem']}")
