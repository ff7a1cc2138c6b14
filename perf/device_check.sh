#!/usr/bin/env bash
# The one prepared GPU check (through the device tool on a lent GPU machine, never in CI): installs
# the project into the machine's Python (no download: the machine has torch and reaches no index),
# runs the CUDA tests and the perf scripts on cuda, and writes every figure under $OUT (default
# ./device_out). Each step has its own time limit; all of them fit one 600 s command:
#   run: bash perf/device_check.sh      (timeout_s=600)
# Paste the tables into the README with the date and the device.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-device_out}"
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
step() {   # step NAME LIMIT_S COMMAND...: run it, keep its output, go on whatever it returns
  local name=$1 limit=$2; shift 2
  log "$name (limit ${limit} s): $*"
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  log "$name: exit $? ($(tail -1 "$OUT/$name.txt" | cut -c1-120))"
}
{ nvidia-smi; python3 --version; python3 -c "import torch; print('torch', torch.__version__)"; } \
  > "$OUT/machine.txt" 2>&1
step install 60 python3 -m pip install -q --no-deps --no-build-isolation -e .
step rounding 20 python3 -c "from analysis.machine import rounding_context; print(rounding_context('cuda'))"
step cuda_tests 90 python3 -m pytest -q -p no:cacheprovider tests/aggregators/test_device.py \
  tests/benchmarks/test_search.py -k "cuda or device"
step extract_lite0 80 python3 perf/extraction_speed.py --device cuda --preset lite0 --n 64 \
  --precision fp32,bf16 --decode pil,torchvision
# the paper preset needs torchvision's VGG-19 weights in the machine's cache (no download there)
step extract_vgg19 50 python3 perf/extraction_speed.py --device cuda --preset vgg19 --n 32 --precision fp32,bf16
# DINOv2 ViT-S/14 and ViT-B/14 tokens at 518 px (random weights: the speed does not depend on them)
step extract_vit 60 python3 perf/extraction_speed.py --device cuda --preset vit --n 64 --precision fp32,bf16
step multiscale 60 python3 perf/multiscale_cost.py --device cuda --preset lite0 --n 32 --workers 4
step aggregators 50 python3 perf/aggregator_speed.py --device cuda --quick
step search 50 python3 perf/search_speed.py --device cuda --repeats 2
log "done; figures in $OUT"
