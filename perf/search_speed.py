"""Exact search speed and memory, side by side: deepagg's blocked search against numpy argpartition,
the former full-sort search and faiss IndexFlatIP (when installed).

    python perf/search_speed.py            # 100k x 256 (1,000 and 55 queries), 1M x 256 (70 queries)
    python perf/search_speed.py --quick    # 20k and 200k instead
    python perf/search_speed.py --device cuda   # deepagg's search on the GPU (timed to the result)

Synthetic L2-normalised Gaussian float32 descriptors. Each method runs ``--repeats`` times; seconds
are the median, memory the peak resident memory above what the process held before (Linux
VmHWM, reset through /proc/self/clear_refs), the largest over the repeats, and the whole process's
peak (data included). "ours eval pass" is the
search ``evaluate`` makes: the top k plus the exact ranks of 100 tracked items per query (an Oxford-
sized set of positives and junk). faiss times its ``search`` (the index is built outside the timing,
inside the memory figure: it holds a copy of the database). "old full sort" is the former
``benchmarks.search`` (a stable argsort of every score row, 256 queries at a time), run at the
smaller database size only.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.search import search  # noqa: E402

K = 100
N_TRACKED = 100


def rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def exact_peak_memory() -> None:
    """Large blocks mmapped and returned to the system at free (glibc's adaptive threshold off), so
    that one method's freed memory does not hide the next one's peak."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 17)    # M_MMAP_THRESHOLD = 128 KiB
    except (OSError, AttributeError):
        pass


def measure(fn, repeats: int) -> tuple[float, float, float]:
    """(median seconds, peak extra MiB, peak RSS MiB) of ``fn()``; fn may return (seconds, result)
    to time a part of itself."""
    times, peak, top = [], 0.0, 0.0
    for _ in range(repeats):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                   # resets VmHWM to the current RSS
        base = rss_kib("VmRSS")
        t = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], float):
            elapsed = out[0]
        del out
        times.append(elapsed)
        peak = max(peak, (rss_kib("VmHWM") - base) / 1024)
        top = max(top, rss_kib("VmHWM") / 1024)
    return statistics.median(times), peak, top


def old_full_sort(q, x, k, chunk=256):
    idx = []
    for s in range(0, len(q), chunk):
        sc = np.asarray(q[s:s + chunk], np.float32) @ np.asarray(x, np.float32).T
        idx.append(np.argsort(-sc, axis=1, kind="stable")[:, :k].astype(np.int32))
    return np.concatenate(idx)


def argpartition_topk(q, x, k, max_bytes=256 * 2**20):
    chunk = max(1, max_bytes // (4 * len(x)))
    out = np.empty((len(q), k), np.int64)
    for s in range(0, len(q), chunk):
        sc = q[s:s + chunk] @ x.T
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sc, part, 1), axis=1, kind="stable")
        out[s:s + chunk] = np.take_along_axis(part, order, 1)
    return out


def faiss_search(q, x, k):
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    t = time.perf_counter()
    res = index.search(q, k)
    return time.perf_counter() - t, res


def data(n: int, n_q: int, d: int = 256, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, n_q, replace=False)] + 0.5 * rng.standard_normal((n_q, d), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    track = [rng.choice(n, N_TRACKED, replace=False) for _ in range(n_q)]
    return q, x, track


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20k and 200k databases instead of 100k and 1M")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="where deepagg's search computes scores "
                    "(cpu, cuda, cuda:N); the other methods stay on the CPU")
    args = ap.parse_args(argv)
    exact_peak_memory()
    small, large = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    cases = [(small, 1000), (small, 55), (large, 70)]
    try:
        import faiss  # noqa: F401
        have_faiss = True
    except ImportError:
        have_faiss = False
    import torch
    print(f"top-{K}, 256-D float32; torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"numpy {np.__version__}, faiss {'yes' if have_faiss else 'not installed'}, "
          f"deepagg's search on {args.device}; "
          f"median of {args.repeats}")
    for n, n_q in cases:
        q, x, track = data(n, n_q)
        dev = args.device
        methods = {
            f"ours top-k ({dev})": lambda: search(q, x, K, device=dev),
            f"ours eval pass (top-k + ranks, {dev})": lambda: search(q, x, K, track=track, device=dev),
            "numpy argpartition": lambda: argpartition_topk(q, x, K),
        }
        if n == small:
            methods["old full sort"] = lambda: old_full_sort(q, x, K)
        if have_faiss:
            methods["ours top-k, backend=faiss"] = lambda: search(q, x, K, backend="faiss")
            methods["faiss IndexFlatIP"] = lambda: faiss_search(q, x, K)
        rows = {name: measure(fn, args.repeats) for name, fn in methods.items()}
        ref = rows.get("faiss IndexFlatIP", (None,))[0]
        print(f"\n{n:,} x 256, {n_q} queries")
        print(f"(data: queries + database {(q.nbytes + x.nbytes) / 2**20:.0f} MiB)")
        print("| method | seconds | peak extra MiB | peak RSS MiB | speed vs faiss |")
        print("|---|---:|---:|---:|---:|")
        for name, (sec, mib, top) in rows.items():
            speed = f"{ref / sec:.2f}x" if ref else "-"
            print(f"| {name} | {sec:.3f} | {mib:.0f} | {top:.0f} | {speed} |")
        ours = search(q, x, K)
        if have_faiss:
            _, (_, top) = faiss_search(q, x, K)
            agree = np.mean([len(np.intersect1d(a, b)) / K for a, b in zip(ours.indices, top)])
            print(f"(top-{K} sets equal to faiss's: {agree:.4f} of the items)")
        del q, x, track


if __name__ == "__main__":
    main()
