"""Draws bench.py's layer-mode figures again from the layer.json a run wrote, on any machine: the
titles name the device the JSON records, not this one's.
    PYTHONPATH=. python docs/results/scripts/replot/replot_layer.py LAYER.json OUT_DIR
"""
import json
import os
import sys

import bench

path, out = sys.argv[1], sys.argv[2]
run = json.load(open(path))
bench.dtype = run['dtype']
bench.run_info = lambda: run   # the titles read the device from run_info()
os.makedirs(out, exist_ok=True)
bench.plot_layer(run['results'], os.path.join(out, 'layer_tflops.png'), os.path.join(out, 'layer_memory.png'))
