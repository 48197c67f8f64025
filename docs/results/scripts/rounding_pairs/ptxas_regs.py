"""Registers and spills of token rounding's kernels as ptxas gives them for sm_90a, on the CPU: the pair-list kernel
under launch settings (BLOCK_T, BLOCK_E, num_warps; the first form, whose tile is all E experts, takes BLOCK_E = E)
and the select kernel (BLOCK_T, num_warps), at T = 16384, E = 128, K = 8. Triton writes PTX 9.4, which the ptxas that
Triton 3.9's wheel carries (12.9) refuses: the version line is lowered to 8.8, nothing else changed.
Run from the repository root: python docs/results/scripts/rounding_pairs/ptxas_regs.py"""
import inspect, os, subprocess, sys
sys.path.insert(0, '.')
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import sonic_kernels as sk

PTXAS = os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'ptxas')
T, E, K = 16384, 128, 8


def ptxas_info(kernel, sig, const, warps):
    ptx = triton.compile(ASTSource(kernel, sig, constexprs=const), target=GPUTarget('cuda', 90, 32),
                         options=dict(num_warps=warps)).asm['ptx']
    with open('/tmp/ptxas_regs.ptx', 'w') as f:
        f.write(ptx.replace('.version 9.4', '.version 8.8'))
    out = subprocess.run([PTXAS, '-v', '--gpu-name=sm_90a', '/tmp/ptxas_regs.ptx', '-o', '/tmp/ptxas_regs.cubin'],
                         capture_output=True, text=True).stderr
    return ' | '.join(l.split('info    : ')[-1].strip() for l in out.splitlines() if 'spill' in l or 'registers' in l)


args = list(inspect.signature(sk._round_pairs_kernel.fn).parameters)
first_form = 'fill' in args
sig = {a: t for a, t in zip(args, ['*i8', '*fp32', '*i64', '*fp32', '*i32', '*i64', '*i64', '*fp32', '*i64',
                                     'i32', 'i32', 'i32', 'i32'])}
sig.update(K='constexpr', BLOCK_T='constexpr', BLOCK_E='constexpr', BLOCK_F='constexpr')
configs = ([(32, E, 4), (32, E, 1), (8, E, 4)] if first_form else
           [(64, 16, 2), (64, 16, 4), (128, 16, 4), (32, 16, 1), (64, 32, 4), (32, 8, 1), (128, 8, 2), (32, 32, 4),
            (64, 32, 2)])
for bt, be, warps in configs:
    info = ptxas_info(sk._round_pairs_kernel, sig, dict(K=K, BLOCK_T=bt, BLOCK_E=be, BLOCK_F=1024), warps)
    print(f"_round_pairs_kernel ({'first form' if first_form else 'chunked'}) BLOCK_T {bt} BLOCK_E {be} "
          f"warps {warps}: {info}")
if not first_form:
    sig = dict(P='*fp32', CH='*i8', F='*i64', SEL='*i8', LOAD='*i64', T='i32', E='i32', TILE='i32', MODE='constexpr',
               BLOCK_T='constexpr')
    for bt, warps in [(2048, 4), (4096, 8), (8192, 16), (16384, 16)]:
        print(f"_round_select_kernel BLOCK_T {bt} warps {warps}: "
              f"{ptxas_info(sk._round_select_kernel, sig, dict(MODE=0, BLOCK_T=bt), warps)}")
