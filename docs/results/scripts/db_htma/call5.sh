#!/bin/bash
# From the repository root on one H200, the tree with the portable weight gradients' one-sum squares: the GPU tests
# of the weight gradients (portable on fp32 operands, Hopper on bf16), their squares, dA', the layer and the int64
# offsets. Logs under $OUT.
export PYTHONPATH=$PWD
timeout -s KILL 400 python -m pytest -q -n 6 --timeout=380 -p no:cacheprovider tests/test_sonic.py -k "squares or wgrad or down_bwd or layer or int64" > $OUT/tests.log 2>&1; echo rc $? >> $OUT/tests.log
tail -3 $OUT/tests.log
