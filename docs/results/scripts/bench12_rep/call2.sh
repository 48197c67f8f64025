export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,clocks.sm,power.draw,driver_version --format=csv > $OUT/gpu.txt 2>&1
python -c "import torch, triton; print(torch.__version__, triton.__version__)" >> $OUT/gpu.txt
for p in 1 2; do
  timeout -s KILL 280 python bench.py --backends=sonic --warmup=10 --rep=40 --check=False --out_dir=$OUT/layer$p > $OUT/bench_layer$p.log 2>&1; echo "rc $?" >> $OUT/bench_layer$p.log
  grep -A13 "^whole MoE" $OUT/bench_layer$p.log | cut -c1-150
done
