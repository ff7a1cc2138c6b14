#!/usr/bin/env bash
# The one prepared GPU check (run through the device tool on a lent GPU machine, never in CI):
# installs the project, runs the CUDA tests and the perf scripts on cuda, and writes every figure
# under $OUT (default ./device_out). Paste the tables into the README with the date and the device.
#   bash perf/device_check.sh            # about 6 to 8 minutes on one H100
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-device_out}"
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
step() {   # step NAME TIMEOUT_S COMMAND...: run, keep its output, never stop the script
  local name=$1 limit=$2; shift 2
  log "$name: $*"
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  log "$name: exit $? ($(tail -1 "$OUT/$name.txt" | cut -c1-120))"
}
{ nvidia-smi; python3 --version; } > "$OUT/machine.txt" 2>&1
python3 -m venv "$OUT/.venv" && . "$OUT/.venv/bin/activate"
step install 300 python -m pip install -q -e '.[test]'
python -c "from analysis.machine import rounding_context; print(rounding_context('cuda'))" \
  > "$OUT/rounding.txt" 2>&1
step cuda_tests 300 python -m pytest -q tests/aggregators/test_device.py tests/benchmarks/test_search.py \
  tests/features/test_deep.py -k "cuda or device or torchvision"
# extraction: the paper preset (VGG-19 586 px needs its torchvision weights: online once) and Lite0
step extract_lite0 300 python perf/extraction_speed.py --device cuda --preset lite0 \
  --precision fp32,bf16 --decode pil,torchvision
step extract_vgg19 300 python perf/extraction_speed.py --device cuda --preset vgg19 --precision fp32,bf16
# ViT token extraction: measured here once the token extractors of issue 16 exist
step aggregators 300 python perf/aggregator_speed.py --device cuda --quick
step search 300 python perf/search_speed.py --device cuda --repeats 2
log "done; figures in $OUT"
