"""Encoding speed of every aggregator on VGG-19-sized maps (37 x 37 x 512) against its GEMM
lower bound, on a chosen device.

Random non-negative maps (ReLU'd Gaussians) stand in for conv5_4 features; fitting uses the
features of ``--fit-images`` such maps, sampled down to ``--max-features`` by the learned methods
(fitting always runs on the CPU). Encoding is timed ``--batch`` images per ``transform`` call
(the learned methods run on ``--device`` via ``to()``; the poolings always run on the CPU), over
``--images`` images or ``--budget`` seconds, whichever ends first (at least 2 calls, after a
warm-up); the figure is the median per image.

Lower bound: the FLOPs of each method's definition (``flops`` below; a multiply-add counts 2)
divided by the measured GEMM peak of the precision the method computes in (float32 or float64):
the best of torch.mm (and, on the CPU, NumPy's matmul, which the CPU paths of the Fisher vector
and triangulation embedding use) over representative sizes. Ratio = measured / bound (>= 1; near
1 means the method runs at the speed of its products). BLAS and torch use ``--threads`` threads
(default 1: the per-core figure; on a shared machine multi-threaded BLAS mostly measures
contention).

    python perf/aggregator_speed.py [--device cpu|cuda|cuda:N] [--quick] [--batch B]
        [--images 16] [--fit-images 50] [--max-features 20000] [--threads 1] [--only vlad64 ...]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from aggregators import (RMAC, VLAD, CroW, FisherVector, GeM, MaxPooling, SumPooling,
                         TriangulationEmbedding)
from aggregators.rmac import rmac_regions
from features import LocalFeatures


def methods(max_features: int, device: str) -> dict:
    cap = dict(max_features=max_features)
    return {
        "sum": SumPooling(), "spoc": SumPooling(center_prior=True), "max": MaxPooling(),
        "gem": GeM(p=3.0), "rmac": RMAC(), "crow": CroW(),
        "vlad64": VLAD(n_clusters=64, **cap).to(device),
        "fv16": FisherVector(n_components=16, **cap).to(device),
        "fv256": FisherVector(n_components=256, **cap).to(device),
        "temb1": TriangulationEmbedding(n_anchors=1, **cap).to(device),
        "temb16": TriangulationEmbedding(n_anchors=16, **cap).to(device),
    }


def flops(agg, h: int, w: int, d: int) -> tuple[float, float]:
    """(float32, float64) FLOPs of encoding one h x w x d map by the method's definition.

    n = h w local features, k centres / components / anchors, D output dimension.
      sum      n d                   (adds)
      spoc     2 n d                 (weight, add)
      max      n d                   (compares)
      gem      5 n d                 (clamp, channel max, divide, cube, add)
      rmac     sum_r |r| d + 3 R d   (max over each region r, L2 and sum of the R regions)
      crow     4 n d                 (channel sums, activity counts, weight, add)
      vlad     2 n d k  + 2 n d + 4 k d
               (nearest centres: one float32 product; float64 residual sums; normalisation)
      fv       4 (2 n d k) + 6 n k + 12 k d      (float64: two products for the log-densities,
               two for the first and second order statistics; softmax; gradients)
      temb     3 n k d + 2 n (k d) D + n (n + 1) D   (float32: triangulation, whitening, and the
               symmetric kernel: n (n + 1) / 2 dot products; NumPy's phi @ phi.T is one syrk)
               + 2 i n^2 + 2 n D                 (float64: i Sinkhorn iterations, weighted sum)
               with democratic aggregation; the sum: 3 n k d + n k d + 2 k d D
    """
    n = h * w
    if isinstance(agg, SumPooling):
        return (2 if agg.center_prior else 1) * n * d, 0.0
    if isinstance(agg, MaxPooling):
        return n * d, 0.0
    if isinstance(agg, GeM):
        return 5 * n * d, 0.0
    if isinstance(agg, RMAC):
        regions = rmac_regions(h, w, agg.levels, agg.overlap)
        return sum(s * s for _, _, s in regions) * d + 3 * len(regions) * d, 0.0
    if isinstance(agg, CroW):
        return 4 * n * d, 0.0
    if isinstance(agg, VLAD):
        k = agg.n_clusters
        return 2 * n * d * k, 2 * n * d + 4 * k * d
    if isinstance(agg, FisherVector):
        k = agg.n_components
        return 0.0, 4 * (2 * n * d * k) + 6 * n * k + 12 * k * d
    if isinstance(agg, TriangulationEmbedding):
        k, dim = agg.n_anchors, agg.output_dim(d)
        if not agg.democratic:
            return 4 * n * k * d + 2 * k * d * dim, 0.0
        f32 = 3 * n * k * d + 2 * n * (k * d) * dim + n * (n + 1) * dim
        return f32, 2 * agg.sinkhorn_iters * n * n + 2 * n * dim
    raise TypeError(f"no FLOP formula for {type(agg).__name__}")


def gemm_peak(device: torch.device, dtype: torch.dtype, shapes: list[tuple[int, int, int]]
              ) -> tuple[float, str]:
    """Best GFLOP/s of (m, k) @ (k, n) products on ``device`` and which library gave it."""
    best, who = 0.0, ""
    for m, k, n in shapes:
        a = torch.rand(m, k, dtype=dtype, device=device)
        b = torch.rand(k, n, dtype=dtype, device=device)
        runs: list[tuple[str, Callable[[], object]]] = [("torch.mm", lambda: torch.mm(a, b))]
        if device.type == "cpu":
            an, bn = a.numpy(), b.numpy()
            runs.append(("numpy", lambda: an @ bn))
        for name, run in runs:
            rate = 2 * m * k * n / _best_time(run, device) / 1e9
            if rate > best:
                best, who = rate, name
    return best, who


def _best_time(run: Callable[[], object], device: torch.device, reps: int = 3) -> float:
    run()
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - t)
    return min(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_maps(count: int, seed: int, h: int = 37, w: int = 37,
                d: int = 512) -> list[LocalFeatures]:
    rng = np.random.default_rng(seed)
    return [LocalFeatures.from_map(np.maximum(rng.standard_normal((d, h, w), np.float32), 0))
            for _ in range(count)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (encoding only)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 37 x 37 x 128 maps, 10 fitting maps, 4 test images, 2 s")
    ap.add_argument("--images", type=int, default=16, help="images encoded per method, at most")
    ap.add_argument("--batch", type=int, help="images per transform call (default: 1 on the "
                    "CPU, 32 on a CUDA device)")
    ap.add_argument("--budget", type=float, default=15.0, help="seconds of encoding per method")
    ap.add_argument("--fit-images", type=int, default=50)
    ap.add_argument("--max-features", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=512, help="local feature dimension d")
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads")
    ap.add_argument("--only", nargs="*", help="method names to run (default: all)")
    args = ap.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: no CUDA device is available here; use --device cpu")
    if args.batch is None:
        args.batch = 1 if args.device == "cpu" else 32
    if args.quick:
        args.dim, args.fit_images, args.images, args.budget = 128, 10, 4, 2.0
        args.batch, args.max_features = min(args.batch, 2), min(args.max_features, 5_000)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    h = w = 37
    d, n = args.dim, h * w
    fit_set = random_maps(args.fit_images, 0, d=d)
    test_set = random_maps(max(args.images, 2 * args.batch), 1, d=d)
    shapes = [(n, d, 64), (n, d, 256), (2048, 2048, 2048)]
    if device.type == "cuda":
        shapes.append((8192, 8192, 8192))
    peak32, lib32 = gemm_peak(device, torch.float32, shapes)
    peak64, lib64 = gemm_peak(device, torch.float64, shapes)
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"# {where}, device {device}, {args.threads} thread(s), torch {torch.__version__}, "
          f"numpy {np.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(f"# encode: {h} x {w} x {d} maps ({n} local features), {args.batch} per call; fit: "
          f"{args.fit_images} maps ({args.fit_images * n} features), learned methods sample "
          f"{args.max_features}")
    print(f"# GEMM peak: float32 {peak32:.1f} GFLOP/s ({lib32}), float64 {peak64:.1f} GFLOP/s "
          f"({lib64}); sizes {shapes}\n")
    print("| aggregator | encodes on | D | fit (s) | encode (ms / image) | images / s "
          "| GFLOP / image | lower bound (ms) | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, agg in methods(args.max_features, args.device).items():
        if args.only and name not in args.only:
            continue
        t = time.perf_counter()
        agg.fit(fit_set)
        fit_s = time.perf_counter() - t
        ms = 1e3 * encode_seconds(agg, test_set, args.batch, args.budget, device)
        f32, f64 = flops(agg, h, w, d)
        bound = 1e3 * (f32 / (peak32 * 1e9) + f64 / (peak64 * 1e9))
        print(f"| {name} | {encodes_on(agg)} | {agg.dim} | {fit_s:.2f} | {ms:.3g} | "
              f"{1e3 / ms:.1f} | "
              f"{(f32 + f64) / 1e9:.3g} | {bound:.3g} | {ms / bound:.2f} |", flush=True)


def encodes_on(agg) -> str:
    """Where and with what a method encodes: the learned methods follow ``device`` (torch),
    except the Fisher vector and triangulation embedding, which use NumPy on the CPU; the
    poolings have no device setting and run on the CPU."""
    device = getattr(agg, "device", "cpu")
    if device == "cpu" and isinstance(agg, (FisherVector, TriangulationEmbedding)):
        return "cpu, NumPy"
    if isinstance(agg, (VLAD, FisherVector, TriangulationEmbedding, GeM)):
        return f"{device}, torch"
    return "cpu, NumPy"


def encode_seconds(agg, images: list[LocalFeatures], batch: int, budget: float,
                   device: torch.device) -> float:
    """Median seconds per image of ``transform`` on ``batch`` images at a time."""
    calls = [images[s:s + batch] for s in range(0, len(images) - batch + 1, batch)]
    agg.transform(calls[0])  # warm-up (and tensors moved to the device)
    per_image = []
    while len(per_image) < 2 or (sum(per_image) * batch < budget and len(per_image) < len(calls)):
        chunk = calls[len(per_image) % len(calls)]
        _sync(device)
        t = time.perf_counter()
        agg.transform(chunk)
        _sync(device)
        per_image.append((time.perf_counter() - t) / len(chunk))
    return float(np.median(per_image))


if __name__ == "__main__":
    main()
