"""Extraction throughput (batched vs a plain batch-size-1 loop) and the default run's cost.

    python perf/extraction_speed.py [--device cpu] [--n 32] [--skip-run]

Prints images/s of (1) the demo's extractor (EfficientNet-Lite0, 384 px, offline weights) and
(2) VGG-16 conv5_3 at 586 x 586 (random weights: speed does not depend on them), each batched
(DeepExtractor, channels-last, equal-size images share a forward pass) and as a batch-size-1 loop
over the same images and model; then runs the default ``deepagg-run`` on a fresh store and prints
its wall time, per-stage timings and peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.demo import demo_dataset
from features.deep import DeepExtractor


def throughput(ex: DeepExtractor, images, batch_size: int) -> float:
    ex(images[:batch_size])  # warm-up
    t = time.perf_counter()
    for s in range(0, len(images), batch_size):
        ex(images[s:s + batch_size])
    if ex.device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - t)


def plain_loop(ex: DeepExtractor, images) -> float:
    """The usual reference loop: contiguous (not channels-last) model, one image per forward."""
    net = ex.net.to(memory_format=torch.contiguous_format)
    x0 = torch.from_numpy(ex.preprocess(images[0]))[None].to(ex.device)
    with torch.inference_mode():
        net(x0)
        t = time.perf_counter()
        for im in images:
            x = torch.from_numpy(ex.preprocess(im))[None].to(ex.device)
            net((x - ex._mean) / ex._std)["out"].cpu()
    elapsed = time.perf_counter() - t
    ex.net.to(memory_format=torch.channels_last)
    return len(images) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=32, help="images per measurement")
    ap.add_argument("--batch-sizes", default="4,8,16")
    ap.add_argument("--skip-run", action="store_true", help="skip the default deepagg-run")
    args = ap.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()}")
    if not args.skip_run:  # first: a child forked from a parent holding models inherits its RSS
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, DEEPAGG_STORE=str(Path(tmp) / "store"))
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "experiments.run", f"device={args.device}"], cwd=tmp,
                           env=env, check=True, capture_output=True)
            wall = time.perf_counter() - t
            peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            rec = json.loads(next(Path(tmp).rglob("results.jsonl")).read_text().splitlines()[0])
        print(f"default deepagg-run on a fresh store: {wall:.1f} s wall, peak RSS {peak_mb:.0f} MB")
        print("stages (s): " + ", ".join(f"{k}={v}" for k, v in rec["timings"].items()))
    images = [r.load() for r in demo_dataset().images[:args.n]]
    setups = {
        "EfficientNet-Lite0 bn2, demo 384x288": DeepExtractor(device=args.device),
        "VGG-16 conv5_3, 586x586 (random weights)": DeepExtractor(
            source="torchvision", name="vgg16", layer="features.29", weights=None, resize="square",
            image_size=586, ceil_mode=True, device=args.device),
    }
    print("| model | batch-1 loop (img/s) | " + " | ".join(f"batched {b} (img/s)" for b in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for label, ex in setups.items():
        n = args.n if "Lite0" in label else max(8, args.n // 4)
        imgs = images[:n]
        row = [f"{plain_loop(ex, imgs):.1f}"] + [f"{throughput(ex, imgs, b):.1f}" for b in sizes]
        print(f"| {label} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
