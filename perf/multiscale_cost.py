"""Multi-scale extraction cost: time and peak memory per image of a scale set against one scale,
through the real path (features.multiscale.MultiScaleSource into a fresh store: one pass per
scale, each image decoded and resized once per scale).

    python perf/multiscale_cost.py [--preset lite0|vits14] [--image-size PX] [--device cpu|cuda] [--n 64]
                                   [--sets "1;1,0.7071,0.5;0.7071,1,1.4142"] [--repeats 3]

Each scale set runs in a fresh process (so that its peak resident memory is its own) on the same
JPEG files (bundled photos, 1024 x 768 and 768 x 1024), ``--repeats`` times, the sets taking
turns (so that a slow spell of a shared machine does not fall on one set); it prints the median
seconds per image, the ratio to the single scale, the pixels extracted relative to one scale (sum of s^2), and the largest
peak resident memory of its processes (ru_maxrss) with the resident memory once the model is
built. The goal for
{1, 0.7071, 0.5} (1.75x the pixels): <= 1.9x the time of one scale.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PRESETS = {
    "lite0": {"_target_": "features.deep.DeepExtractor", "resize": "max_side", "image_size": 384},
    "vits14": {"_target_": "features.vit.TokenExtractor", "name": "vit_small_patch14_dinov2",
               "image_size": 518},
}


def rss_mib() -> float:
    """This process's resident memory now (Linux), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def child(args) -> None:
    """One scale set in this process; prints one JSON line."""
    from benchmarks.base import ImageRef
    from experiments.adapters import build_extractor
    from features import resources
    from features.multiscale import MultiScaleSource
    from features.source import FeatureSource
    from features.store import FeatureStore
    resources.apply(None, 0, args.device)
    backbone = PRESETS[args.preset] | ({"image_size": args.image_size} if args.image_size else {})
    scales = [float(s) for s in args.child.split(",")]
    refs = [ImageRef(p.stem, p) for p in sorted(Path(args.images).glob("*.jpg"))]
    extractor = build_extractor(backbone, args.device)
    after_model = rss_mib()
    batch = resources.batch_size(None, args.device)
    with tempfile.TemporaryDirectory() as store:
        source = FeatureSource(FeatureStore(store, "float16", 64), backbone, lambda: extractor,
                               batch_size=batch, num_workers=args.workers, progress=False)
        warm = FeatureSource(FeatureStore(Path(store) / "warm", "float16", 64), backbone,
                             lambda: extractor, batch_size=batch, num_workers=args.workers,
                             progress=False)
        MultiScaleSource(warm, scales).features("warm", refs[:4])   # oneDNN primitives per shape
        t = time.perf_counter()
        MultiScaleSource(source, scales).features("bench", refs)
        seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"scales": scales, "s_per_image": seconds / len(refs), "peak_mib": peak,
                      "model_mib": after_model}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=PRESETS, default="lite0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=64, help="images per scale set")
    ap.add_argument("--workers", type=int, default=0, help="loader worker processes")
    ap.add_argument("--image-size", type=int, default=None, help="the preset's image_size instead")
    ap.add_argument("--sets", default="1;1,0.7071,0.5;0.7071,1,1.4142")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each set (median reported)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--images", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from extraction_speed import write_jpegs
    print(f"# {dt.date.today()} preset={args.preset} image_size={args.image_size or 'preset'} "
          f"device={args.device} n={args.n} workers={args.workers} repeats={args.repeats} "
          f"cores={os.cpu_count()}")
    print("| scales | pixels vs one scale | s / image | time vs one scale | peak RSS MiB | "
          "RSS after model MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    sets = args.sets.split(";")
    runs: dict[str, list[dict]] = {s: [] for s in sets}
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), args.n, (1024, 768))
        for _ in range(args.repeats):
            for scale_set in sets:
                out = subprocess.run([sys.executable, __file__, "--child", scale_set, "--images", tmp,
                                      "--preset", args.preset, "--device", args.device,
                                      "--workers", str(args.workers),
                                      *(["--image-size", str(args.image_size)] if args.image_size else [])],
                                     capture_output=True, text=True, check=True)
                runs[scale_set].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(r["s_per_image"] for r in runs[sets[0]])
    for scale_set in sets:
        rs = runs[scale_set]
        seconds = statistics.median(r["s_per_image"] for r in rs)
        pixels = sum(s * s for s in rs[0]["scales"])
        print(f"| {', '.join(f'{s:g}' for s in rs[0]['scales'])} | {pixels:.2f}x | {seconds:.4f} | "
              f"{seconds / base:.2f}x | {max(r['peak_mib'] for r in rs):.0f} | "
              f"{rs[0]['model_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
