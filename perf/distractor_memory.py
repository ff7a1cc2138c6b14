"""Peak memory of a run with many distractors: extraction and aggregation stream through the
on-disk store, so memory grows with the global descriptors, not with the local features.

    python perf/distractor_memory.py [--distractors 10000] [--image-size 160]

Runs ``deepagg-run`` on the demo test set plus N synthetic distractors (``dataset.distractors``),
twice on one fresh store (first: extract everything; second: read from the store), and prints
wall time, peak resident memory (the OS's ru_maxrss of the run, which includes file pages of
the memory-mapped store that the OS may reclaim) and the store's size on disk.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--distractors", type=int, default=10_000)
    ap.add_argument("--image-size", type=int, default=160)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DEEPAGG_STORE=str(Path(tmp) / "store"))
        common = [f"backbone.image_size={args.image_size}", "postprocess.dim=64", "batch_size=16"]
        print("| database | pass | wall (s) | peak RSS (MB) |\n|---|---|---|---|")
        for n in (0, args.distractors):
            for label in ("extract + evaluate", "from store"):
                wall, rss = measure([f"dataset.distractors={n}", *common], tmp, env)
                print(f"| 80 + {n} distractors | {label} | {wall:.0f} | {rss:.0f} |", flush=True)
        size = sum(f.stat().st_size for f in (Path(tmp) / "store").rglob("*") if f.is_file())
        print(f"\nstore on disk: {size / 2**20:.0f} MB (float16 local features)")


def measure(args: list[str], cwd: str, env: dict) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of one deepagg-run child."""
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "experiments.run", *args], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    while True:  # drain output without waiting (wait4 below reaps the child)
        b = p.stdout.read(65536)
        if not b:
            break
        chunks.append(b)
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(b"".join(chunks).decode(errors="replace")[-3000:])
    return time.perf_counter() - t, usage.ru_maxrss / 1024


if __name__ == "__main__":
    main()
