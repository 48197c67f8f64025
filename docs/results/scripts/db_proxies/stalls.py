"""Nsight Compute's warp stall samples of a warp-specialised kernel, per partition: the SASS source page (CSV) split
at each setmaxnreg (a partition's first instruction), each part's samples by stall reason and by opcode.
usage: stalls.py SOURCE.csv[.gz]"""
import collections, csv, gzip, re, sys

f = gzip.open(sys.argv[1], "rt") if sys.argv[1].endswith(".gz") else open(sys.argv[1])
rows = [r for r in csv.reader(f)]
start = next(i for i, r in enumerate(rows) if "Source" in r and "Address" in r)
hdr, data = rows[start], rows[start + 1:]
si, ns = hdr.index("Source"), hdr.index("Warp Stall Sampling (All Samples)")
reasons = [i for i, h in enumerate(hdr) if h.startswith("stall_") and "Not Issued" not in h]
region, by_reason, by_op = "entry", collections.defaultdict(collections.Counter), collections.defaultdict(collections.Counter)
order = []
for r in data:
    if len(r) <= ns:
        continue
    src = r[si]
    m = re.search(r"USETMAXREG\.(\S+)\s+(?:UP0,\s*)?(0x[0-9a-f]+)", src)
    if m:
        region = f"{m.group(1).split('.')[0]} {int(m.group(2), 16)} at {r[0][-5:]}"
        order.append(region)
    for i in reasons:
        v = int(r[i] or 0)
        if v:
            by_reason[region][hdr[i][6:]] += v
    words = src.split()
    op = words[1] if words and words[0].startswith("@") and len(words) > 1 else (words[0] if words else "")
    by_op[region][op.split(".")[0]] += int(r[ns] or 0)
total = sum(sum(c.values()) for c in by_reason.values())
for reg in ["entry"] + order:
    c = by_reason.get(reg)
    if not c or sum(c.values()) < 0.01 * total:
        continue
    t = sum(c.values())
    print(f"{reg}: {t} samples ({t / total:.0%});", ", ".join(f"{k} {v / t:.0%}" for k, v in c.most_common(7)))
    print("    by opcode:", ", ".join(f"{k} {v / t:.0%}" for k, v in by_op[reg].most_common(8)))
