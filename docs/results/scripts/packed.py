"""The router's forward kernel with its top-K taken as one int64 max a round (probe1.py's variant):
built from sonic_kernels' own source, with _topk_rank replaced by _topk_rank_packed below."""
import importlib.util
import inspect
import os
import tempfile

import triton
import triton.language as tl

import sonic_kernels


@triton.jit
def _topk_rank_packed(work, cols, K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_E: tl.constexpr):
    # one int64 max per round: the fp32 score's order-preserving int32 bits, then the reversed column
    b = work.to(tl.int32, bitcast=True)
    key32 = tl.where(b >= 0, b, b ^ 0x7FFFFFFF)
    key = (key32.to(tl.int64) << 32) | (BLOCK_E - 1 - cols)[None, :].to(tl.int64)
    rank = tl.full((BLOCK_T, BLOCK_E), -1, dtype=tl.int32)
    for k in tl.static_range(K):
        m = tl.max(key, axis=1)
        hit = key == m[:, None]
        rank = tl.where(hit, k, rank)
        key = tl.where(hit, -9223372036854775807, key)
    return rank


# triton.jit needs the kernel's source in a file: write the renamed copy, import it
_src = inspect.getsource(sonic_kernels._router_fwd_kernel.fn).replace("_router_fwd_kernel", "_router_fwd_packed")
_path = os.path.join(tempfile.mkdtemp(), "router_fwd_packed.py")
with open(_path, "w") as f:
    f.write("import triton\nimport triton.language as tl\nfrom packed import _topk_rank_packed\n\n"
            + _src.replace("_topk_rank(", "_topk_rank_packed("))
_spec = importlib.util.spec_from_file_location("router_fwd_packed", _path)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
_router_fwd_packed = _mod._router_fwd_packed
