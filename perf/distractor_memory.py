"""Time and peak memory of a run against the database size: the demo plus N synthetic distractors
(N = 0, 1k, 10k, 100k by default), every feature read from the store, with a log-log plot and a
projection to 1M.

    python perf/distractor_memory.py [--sizes 0,1000,10000,100000] [--image-size 64] [--plot PATH]

Each distractor's local features are written into the store directly (a random 2 x 2 x 1280 map,
the shape Lite0 gives at --image-size 64), under exactly the key a real extraction would use, so
the measured ``deepagg-run`` reads them as it would read extracted ones; the demo's own 80 images
and its 288 fitting images are extracted for real. Extraction costs are not measured here
(perf/extraction_speed.py). Peak memory is the run's ru_maxrss (it includes mapped store pages
that the OS may reclaim); the per-image cost is the slope between the two largest sizes.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass(frozen=True)
class Seed:
    """A prepared distractor: only its seed (nothing is rendered)."""
    seed: int
    shape: tuple = ("distractor",)


class DistractorFeatures:
    """Extractor that runs the real one on real images and gives every synthetic distractor a
    random (1280, 2, 2) non-negative map instead (same store layout and key)."""

    kind = "deep"

    def __init__(self, real):
        self.real = real

    def preparer(self):
        return _Prepare(self.real.preparer())

    def batch_key(self, prepared):
        return ("distractor",) if isinstance(prepared, Seed) else self.real.batch_key(prepared)

    def run(self, batch):
        from features import LocalFeatures
        if isinstance(batch[0], Seed):
            out = []
            for s in batch:
                m = np.random.default_rng(s.seed).random((1280, 2, 2), dtype=np.float32)
                out.append(LocalFeatures.from_map(np.maximum(m - 0.5, 0)))
            return out
        return self.real.run(batch)


@dataclass(frozen=True)
class _Prepare:
    real: object

    def __call__(self, item):
        name = item.ref.name
        if name.startswith("distractor_"):
            return Seed(int(name.rsplit("_", 1)[1]))
        return self.real(item)


def populate(store_root: Path, n: int, image_size: int) -> None:
    """Store the demo + n distractors and the holdout, distractors with random features."""
    from omegaconf import OmegaConf

    from benchmarks.demo import demo_dataset
    from experiments.adapters import build_extractor
    from features.source import FeatureSource
    from features.store import FeatureStore
    backbone = OmegaConf.to_container(OmegaConf.load(
        Path(__file__).resolve().parents[1] / "conf/backbone/efficientnet_lite0.yaml"))
    backbone["image_size"] = image_size
    source = FeatureSource(FeatureStore(store_root), backbone, lambda: build_extractor(backbone),
                           batch_size=16, num_workers=1, progress=False)
    source._extractor = DistractorFeatures(source.extractor())
    source.features("demo", demo_dataset(distractors=n).images)
    source.features("demo_holdout", demo_dataset("demo_holdout", "holdout", 32).images)


def measure(args: list[str], cwd: str, env: dict) -> tuple[float, float]:
    """Wall time and peak RSS (MiB) of one deepagg-run child."""
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "experiments.run", *args], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(out.decode(errors="replace")[-3000:])
    if b"extracting" in out:
        sys.exit("the measured run extracted features: the store was not populated as expected")
    return time.perf_counter() - t, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="0,1000,10000,100000")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--plot", type=Path, default=None, help="write the log-log plot (PNG) here")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        env = dict(os.environ, DEEPAGG_STORE=str(store))
        print("| database images | populate (s) | run wall (s) | run peak RSS (MiB) |")
        print("|---:|---:|---:|---:|")
        for n in sizes:
            t = time.perf_counter()
            populate(store, n, args.image_size)
            made = time.perf_counter() - t
            common = [f"backbone.image_size={args.image_size}", "postprocess.dim=64",
                      f"dataset.distractors={n}", f"hydra.run.dir={tmp}/run{n}", "skip_existing=false"]
            measure(common, tmp, env)                       # warm the page cache once
            wall, rss = measure(common, tmp, env)
            rows.append((80 + n, wall, rss))
            print(f"| {80 + n:,} | {made:.0f} | {wall:.1f} | {rss:.0f} |", flush=True)
        size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        print(f"\nstore on disk: {size / 2**20:,.0f} MiB")
    if len(rows) >= 2:
        (n1, w1, m1), (n2, w2, m2) = rows[-2], rows[-1]
        per_image_kib = (m2 - m1) * 1024 / (n2 - n1)
        per_image_ms = (w2 - w1) * 1000 / (n2 - n1)
        print(f"per database image: {per_image_kib:.2f} KiB of peak memory, {per_image_ms:.3f} ms of run "
              f"time; projected to 1M images: {m2 + (1_000_000 - n2) * per_image_kib / 1024:,.0f} MiB, "
              f"{w2 + (1_000_000 - n2) * per_image_ms / 1000:,.0f} s")
        if args.plot:
            plot(rows, args.plot, per_image_kib, per_image_ms)


def plot(rows, path: Path, kib: float, ms: float) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = np.array([r[0] for r in rows], float)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4), dpi=120)
    proj = np.array([n[-1], 1_000_000])
    for ax, col, label, slope, unit in ((axes[0], 1, "run wall time (s)", ms / 1000, 1.0),
                                        (axes[1], 2, "peak resident memory (MiB)", kib / 1024, 1.0)):
        y = np.array([r[col] for r in rows], float)
        ax.loglog(n, y, "o-", label="measured")
        end = y[-1] + (proj[1] - proj[0]) * slope * unit
        ax.loglog(proj, [y[-1], end], "--", label="projected (linear)")
        for xi, yi in list(zip(n, y)) + [(proj[1], end)]:
            ax.annotate(f"{yi:,.0f}" if yi >= 100 else f"{yi:.1f}", (xi, yi), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
        # room for the first and last labels inside the axes (log axes: factors, not offsets)
        ax.set_xlim(n[0] / 2.5, proj[1] * 2.5)
        ax.set_ylim(min(y) / 1.6, max(end, max(y)) * 1.8)
        ax.set_xlabel("database images")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("deepagg-run from the store against the database size (demo + synthetic distractors)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
