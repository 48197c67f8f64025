export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv > $OUT/gpu.txt 2>&1
timeout -s KILL 200 python .gpu/fb_probe.py > $OUT/fb_probe.log 2>&1; echo "rc $?" >> $OUT/fb_probe.log
cat $OUT/fb_probe.log | grep -v Warn
PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True timeout -s KILL 150 python .gpu/fb_probe.py > $OUT/fb_probe_expandable.log 2>&1; echo "rc $?" >> $OUT/fb_probe_expandable.log
cat $OUT/fb_probe_expandable.log | grep -v Warn
