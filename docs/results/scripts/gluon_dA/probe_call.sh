#!/bin/bash
# both prepared kernels' probes in one call: .gpu/epi/ held branch try/dA-epilogue-wg's sonic_kernels.py and epi_probe.py,
# .gpu/up/ branch try/up-gluon's (dc19ffa) sonic_kernels.py and up_probe.py, .gpu/sk_main.py main's sonic_kernels.py
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
python -c "import triton, torch; print(triton.__version__, torch.__version__)"
PYTHONPATH=$PWD/.gpu/epi:$PWD timeout -s KILL 240 python .gpu/epi/epi_probe.py $OUT/epi_probe.json > $OUT/epi_probe.log 2>&1
echo "rc $?" >> $OUT/epi_probe.log; grep -v Warn $OUT/epi_probe.log
PYTHONPATH=$PWD/.gpu/up:$PWD timeout -s KILL 240 python .gpu/up/up_probe.py $OUT/up_probe.json > $OUT/up_probe.log 2>&1
echo "rc $?" >> $OUT/up_probe.log; grep -v Warn $OUT/up_probe.log
