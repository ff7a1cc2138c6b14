"""Encoding throughput and fitting time of every aggregator on VGG-19-sized maps (37 x 37 x 512).

Random non-negative maps (ReLU'd Gaussians) stand in for conv5_4 features; fitting uses the
features of ``--fit-images`` such maps, sampled down to ``--max-features`` by the learned methods.
Encoding is timed one image at a time, for ``--images`` images or ``--budget`` seconds, whichever
ends first (at least 2 images). BLAS and torch run on ``--threads`` threads (default 1: the
per-core figure; on a shared machine multi-threaded BLAS mostly measures contention).

    python perf/aggregator_speed.py [--images 20] [--fit-images 50] [--max-features 20000] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from aggregators import (RMAC, VLAD, CroW, FisherVector, GeM, MaxPooling, SumPooling,
                         TriangulationEmbedding)
from features import LocalFeatures


def methods(max_features: int) -> dict:
    cap = dict(max_features=max_features)
    return {
        "sum": SumPooling(), "spoc": SumPooling(center_prior=True), "max": MaxPooling(),
        "gem": GeM(p=3.0), "rmac": RMAC(), "crow": CroW(),
        "vlad64": VLAD(n_clusters=64, **cap),
        "fv16": FisherVector(n_components=16, **cap),
        "fv256": FisherVector(n_components=256, **cap),
        "temb1": TriangulationEmbedding(n_anchors=1, **cap),
        "temb16": TriangulationEmbedding(n_anchors=16, **cap),
    }


def random_maps(count: int, seed: int, h: int = 37, w: int = 37,
                d: int = 512) -> list[LocalFeatures]:
    rng = np.random.default_rng(seed)
    return [LocalFeatures.from_map(np.maximum(rng.standard_normal((d, h, w), np.float32), 0))
            for _ in range(count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=20, help="images encoded per method, at most")
    ap.add_argument("--budget", type=float, default=15.0, help="seconds of encoding per method")
    ap.add_argument("--fit-images", type=int, default=50)
    ap.add_argument("--max-features", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads")
    ap.add_argument("--only", nargs="*", help="method names to run (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    fit_set, test_set = random_maps(args.fit_images, 0), random_maps(args.images, 1)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{args.threads} thread(s), torch {torch.__version__}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"# encode: 37 x 37 x 512 maps (1369 local features); fit: {args.fit_images} maps "
          f"({args.fit_images * 1369} features), learned methods sample {args.max_features}\n")
    print("| aggregator | D | fit (s) | encode (ms / image) | images / s |")
    print("|---|---:|---:|---:|---:|")
    for name, agg in methods(args.max_features).items():
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        agg.fit(fit_set)
        fit_s = time.perf_counter() - t
        agg.transform(test_set[0])  # warm-up
        times = []
        for f in test_set:
            t = time.perf_counter()
            agg.transform(f)
            times.append(time.perf_counter() - t)
            if len(times) >= 2 and sum(times) > args.budget:
                break
        ms = 1e3 * float(np.median(times))
        print(f"| {name} | {agg.dim} | {fit_s:.2f} | {ms:.1f} | {1e3 / ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
