# GPU probe kept for docs/PERF.md: time each kernel across configs and B layouts
# run from the repo root: python docs/probes/probe_cfg.py  (imports the repo's sonic_kernels)
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import torch, triton, sys
from triton.testing import do_bench
import sonic_kernels as sk
ONLY_DOWN = 'down' in sys.argv
torch.manual_seed(0)
dt = torch.bfloat16
def run_shape(T,d,n,E,K):
    x = torch.randn(T,d,device='cuda').to(dt)
    w1 = (torch.randn(E,d,2*n,device='cuda')/d**0.5).to(dt)
    w2 = (torch.randn(E,n,d,device='cuda')/n**0.5).to(dt)
    logits = torch.randn(T,E,device='cuda')
    top, idx = torch.topk(logits,K); s = torch.softmax(top,-1).flatten()
    pt = torch.arange(T,device='cuda').repeat_interleave(K); pe = idx.flatten()
    gi, off, rev, tokoff, te, tr0, rs = sk.routing_metadata(pt,pe,s,T,E)
    R = T*K; tiles = sk._max_tiles(R,E)
    F = 2*R*n*d
    dO = torch.randn(T,d,device='cuda').to(dt)
    h = torch.randn(R,2*n,device='cuda').to(dt); a = torch.randn(R,n,device='cuda').to(dt)
    w2t = w2.transpose(1,2).contiguous(); w1t = w1.transpose(1,2).contiguous()
    print(f"== T={T} d={d} n={n} E={E} K={K}", flush=True)
    def t(name, fl, fn):
        try:
            ms = do_bench(fn, warmup=10, rep=40); print(f"{name:60s} {ms*1e3:8.1f}us {fl/ms/1e9:6.0f}TF", flush=True)
        except Exception as ex: print(f"{name:60s} ERR {str(ex)[:80]}", flush=True)
    for BN,BK,w,st in ([] if ONLY_DOWN else [(128,64,8,4),(128,64,8,3),(64,64,4,4),(128,32,8,5),(64,128,4,3)]):
        hh = torch.empty(R,2*n,device='cuda',dtype=dt); aa = torch.empty(R,n,device='cuda',dtype=dt)
        t(f"up BN{BN} BK{BK} w{w} s{st}", 2*F, lambda: sk._up_swiglu_kernel.fn[(tiles*triton.cdiv(n,BN),)](x,w1,hh,aa,gi,te,tr0,off,n,d,E,x.stride(0),w1.stride(0),w1.stride(1),hh.stride(0),aa.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st))
    dH = torch.empty(R,2*n,device='cuda',dtype=dt); Ap = torch.empty(R,n,device='cuda',dtype=dt); dSp = torch.zeros(triton.cdiv(n,32),R,device='cuda')
    for BN,BK,w,st in [(128,64,8,4),(64,64,8,4),(64,64,8,3),(32,64,4,4),(64,32,8,5),(32,64,8,4)]:
        for lay, W, sn, sd in [("T", w2, w2.stride(1), w2.stride(2))]:
            t(f"down_bwd {lay} BN{BN} BK{BK} w{w} s{st}", F, lambda: sk._down_bwd_kernel.fn[(tiles*triton.cdiv(n,BN),)](dO,W,h,rs,gi,te,tr0,off,dH,Ap,dSp,n,d,E,R,dO.stride(0),W.stride(0),sn,sd,h.stride(0),Ap.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st))
    try:
      for kern in [sk._up_swiglu_kernel, sk._down_bwd_kernel]:
        for dev, cc in kern.fn.device_caches.items():
          for key, c in cc[0].items():
            print(kern.fn.__name__, "regs", getattr(c,'n_regs',None), "spills", getattr(c,'n_spills',None), str(key)[-120:])
    except Exception as ex: print("introspection failed", ex)
    if ONLY_DOWN: return
    y = torch.empty(R,d,device='cuda',dtype=dt)
    for BN,BK,w,st in [(128,64,8,4),(256,64,8,3),(128,64,4,4),(256,32,8,4),(128,128,8,3),(64,64,4,4)]:
        t(f"gmm y BN{BN} BK{BK} w{w} s{st}", F, lambda: sk._grouped_mm_kernel.fn[(tiles*triton.cdiv(d,BN),)](a,w2,y,te,tr0,off,d,n,E,a.stride(0),w2.stride(0),w2.stride(1),w2.stride(2),y.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st))
        for lay, W, sk_, sn in [("T", w1, w1.stride(2), w1.stride(1)), ("pre", w1t, w1t.stride(1), w1t.stride(2))]:
            t(f"gmm dX~ {lay} BN{BN} BK{BK} w{w} s{st}", 2*F, lambda: sk._grouped_mm_kernel.fn[(tiles*triton.cdiv(d,BN),)](h,W,y,te,tr0,off,d,2*n,E,h.stride(0),W.stride(0),sk_,sn,y.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st))
    dw1 = torch.empty_like(w1); dw2 = torch.empty_like(w2)
    for BM,BN,BK,w,st in [(128,128,64,4,3),(128,128,64,8,3),(128,256,64,8,3),(256,128,64,8,3),(128,128,32,4,4),(64,128,64,4,4)]:
        t(f"wgrad dW2 BM{BM} BN{BN} BK{BK} w{w} s{st}", F, lambda: sk._wgrad_kernel.fn[(E*triton.cdiv(n,BM)*triton.cdiv(d,BN),)](Ap,dO,dw2,gi,gi,off,n,d,0,Ap.stride(0),dO.stride(0),dw2.stride(0),dw2.stride(1),GATHER_A=False,GATHER_B=True,BLOCK_M=BM,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st))
        t(f"wgrad dW1 BM{BM} BN{BN} BK{BK} w{w} s{st}", 2*F, lambda: sk._wgrad_kernel.fn[(E*triton.cdiv(d,BM)*triton.cdiv(2*n,BN),)](x,dH,dw1,gi,gi,off,d,2*n,0,x.stride(0),dH.stride(0),dw1.stride(0),dw1.stride(1),GATHER_A=True,GATHER_B=False,BLOCK_M=BM,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st))
    out = torch.empty(T,d,device='cuda',dtype=dt)
    for BD in [256,512,1024]:
        t(f"gather_sum BD{BD}", 0, lambda: sk._gather_sum_kernel[(T,triton.cdiv(d,BD))](y,s,rev,tokoff,out,d,y.stride(0),out.stride(0),HAS_S=True,BLOCK_D=BD))
run_shape(24576,1536,256,128,8)
run_shape(32768,4096,512,128,8)
