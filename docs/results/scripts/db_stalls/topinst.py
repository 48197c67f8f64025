"""The SASS instructions of one partition of a warp-specialised kernel with the most warp stall samples (Nsight
Compute's source page, CSV), each with its top stall reasons; the partition is the one that holds the most samples
on OPCODE (MUFU: dA''s epilogue warpgroup, the only one with special-function math).
usage: topinst.py SOURCE.csv[.gz] [OPCODE] [N]"""
import collections, csv, gzip, re, sys

f = gzip.open(sys.argv[1], "rt") if sys.argv[1].endswith(".gz") else open(sys.argv[1])
key = sys.argv[2] if len(sys.argv) > 2 else "MUFU"
top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
rows = [r for r in csv.reader(f)]
start = next(i for i, r in enumerate(rows) if "Source" in r and "Address" in r)
hdr, data = rows[start], rows[start + 1:]
si, ns = hdr.index("Source"), hdr.index("Warp Stall Sampling (All Samples)")
reasons = [i for i, h in enumerate(hdr) if h.startswith("stall_") and "Not Issued" not in h]
parts, cur = [], []
for r in data:
    if len(r) <= ns:
        continue
    if re.search(r"USETMAXREG", r[si]) and cur:
        parts.append(cur)
        cur = []
    cur.append(r)
parts.append(cur)
weight = lambda p: sum(int(r[ns] or 0) for r in p if key in r[si])
part = max(parts, key=weight)
total = sum(int(r[ns] or 0) for r in part)
alls = sum(int(r[ns] or 0) for p in parts for r in p)
print(f"partition with the most {key} samples: {len(part)} instructions, {total} samples ({total / alls:.0%} of all)")
by = collections.Counter()
for r in part:
    for i in reasons:
        by[hdr[i][6:]] += int(r[i] or 0)
t = sum(by.values())
print("by reason:", ", ".join(f"{k} {v / t:.1%}" for k, v in by.most_common(10)))
ops = collections.Counter()
for r in part:
    w = r[si].split()
    op = w[1] if w and w[0].startswith("@") and len(w) > 1 else (w[0] if w else "")
    ops[op.split(".")[0]] += int(r[ns] or 0)
print("by opcode:", ", ".join(f"{k} {v / total:.1%}" for k, v in ops.most_common(12)))
print(f"top {top} instructions (address, samples, share, reasons, SASS):")
for r in sorted(part, key=lambda r: -int(r[ns] or 0))[:top]:
    rs = sorted(((int(r[i] or 0), hdr[i][6:]) for i in reasons), reverse=True)[:3]
    print(f"  {r[0][-6:]} {int(r[ns] or 0):6d} {int(r[ns] or 0) / total:5.1%}  "
          + ", ".join(f"{n} {v}" for v, n in rs if v) + f"   {r[si].strip()[:70]}")
