# GPU debug probe kept for docs/PERF.md: each kernel with explicit configs vs torch
# run from the repo root: python docs/probes/probe_dbg.py  (imports the repo's sonic_kernels)
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
import torch, triton, sys
import sonic_kernels as sk
torch.manual_seed(0)
T,d,n,E,K = [int(v) for v in sys.argv[1:6]] if len(sys.argv)>5 else (2049,512,256,32,8)
dt = torch.bfloat16
x = torch.randn(T,d,device='cuda').to(dt)
w1 = (torch.randn(E,d,2*n,device='cuda')/d**0.5).to(dt)
w2 = (torch.randn(E,n,d,device='cuda')/n**0.5).to(dt)
logits = torch.randn(T,E,device='cuda')
top, idx = torch.topk(logits,K); s = torch.softmax(top,-1).flatten()
pt = torch.arange(T,device='cuda').repeat_interleave(K); pe = idx.flatten()
gi, off, rev, tokoff, te, tr0, rs = sk.routing_metadata(pt,pe,s,T,E)
R = T*K; tiles = sk._max_tiles(R,E)
# references in fp32
eid = pe[torch.argsort(pe, stable=True)]  # expert of each grouped row
xg = x[gi.long()].float()
href = torch.bmm(xg[:,None,:], w1[eid].float()).squeeze(1)
g_, u_ = href.chunk(2,-1); aref = torch.nn.functional.silu(g_)*u_
dO = torch.randn(T,d,device='cuda').to(dt)
dAp = torch.bmm(dO[gi.long()].float()[:,None,:], w2[eid].float().transpose(1,2)).squeeze(1)
def rel(a,b): return ((a.float()-b.float()).norm()/b.float().norm()).item()
for BN,BK,w,st in [(128,64,8,4),(64,64,4,4)]:
    h = torch.empty(R,2*n,device='cuda',dtype=dt); a = torch.empty(R,n,device='cuda',dtype=dt)
    sk._up_swiglu_kernel.fn[(tiles*triton.cdiv(n,BN),)](x,w1,h,a,gi,te,tr0,off,n,d,E,x.stride(0),w1.stride(0),w1.stride(1),h.stride(0),a.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st)
    print("up", BN,BK,w,st, "h", rel(h,href), "a", rel(a,aref))
hb = href.to(dt)
gf, uf = hb.float().chunk(2,-1); a2 = torch.nn.functional.silu(gf)*uf
dS_ref = (dAp*a2).sum(1); da = dAp*rs[:,None]; sig=torch.sigmoid(gf)
dH_ref = torch.cat([da*uf*sig*(1+gf*(1-sig)), da*gf*sig],1); Ap_ref = a2*rs[:,None]
for BN,BK,w,st in [(128,64,8,4),(64,64,4,4)]:
    dH = torch.empty(R,2*n,device='cuda',dtype=dt); Ap = torch.empty(R,n,device='cuda',dtype=dt); dSp = torch.zeros(triton.cdiv(n,32),R,device='cuda')
    sk._down_bwd_kernel.fn[(tiles*triton.cdiv(n,BN),)](dO,w2,hb,rs,gi,te,tr0,off,dH,Ap,dSp,n,d,E,R,dO.stride(0),w2.stride(0),w2.stride(1),w2.stride(2),hb.stride(0),Ap.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st)
    print("down_bwd",BN,BK,w,st,"dH",rel(dH,dH_ref),"Ap",rel(Ap,Ap_ref),"dS",rel(dSp.sum(0),dS_ref))
dxr_ref = torch.bmm(dH_ref.to(dt).float()[:,None,:], w1[eid].float().transpose(1,2)).squeeze(1)
dHb = dH_ref.to(dt)
for BN,BK,w,st in [(128,64,8,4),(256,64,8,3)]:
    c = torch.empty(R,d,device='cuda',dtype=dt)
    sk._grouped_mm_kernel.fn[(tiles*triton.cdiv(d,BN),)](dHb,w1,c,te,tr0,off,d,2*n,E,dHb.stride(0),w1.stride(0),w1.stride(2),w1.stride(1),c.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st)
    y = torch.empty(R,d,device='cuda',dtype=dt); ab = aref.to(dt)
    sk._grouped_mm_kernel.fn[(tiles*triton.cdiv(d,BN),)](ab,w2,y,te,tr0,off,d,n,E,ab.stride(0),w2.stride(0),w2.stride(1),w2.stride(2),y.stride(0),BLOCK_M=128,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st)
    yref = torch.bmm(ab.float()[:,None,:], w2[eid].float()).squeeze(1)
    print("grouped_mm",BN,BK,w,st,"dX~",rel(c,dxr_ref),"y",rel(y,yref))
Apb = Ap_ref.to(dt)
dW2_ref = torch.zeros(E,n,d,device='cuda').index_add_(0, eid, Apb.float()[:,:,None]*dO[gi.long()].float()[:,None,:]) if R*n*d < 4e9 else None
for BM,BN,BK,w,st in [(128,128,64,4,3),(128,128,32,8,4)]:
    dw2 = torch.empty_like(w2)
    sk._wgrad_kernel.fn[(E*triton.cdiv(n,BM)*triton.cdiv(d,BN),)](Apb,dO,dw2,gi,gi,off,n,d,0,Apb.stride(0),dO.stride(0),dw2.stride(0),dw2.stride(1),GATHER_A=False,GATHER_B=True,BLOCK_M=BM,BLOCK_N=BN,BLOCK_K=BK,DOT_PREC="tf32",num_warps=w,num_stages=st)
    print("wgrad", BM,BN,BK,w,st, "dW2", rel(dw2,dW2_ref) if dW2_ref is not None else "-")
