#!/bin/bash
# From the repository root on one H200 (torch 2.11 + Triton 3.6, the image's): the README's two H200 tables again, on
# the tree since the grouped GEMM's per-branch cast, by call1.sh's commands (the kernels-mode command three passes,
# then layer.py sonic all two passes). Logs under $OUT.
exec bash "$(dirname "$0")/call1.sh"
