"""Re-ranking speed and memory: DBA then QE (``rerank=dba_aqe``: DBA k=5, AQE k=5) on synthetic
256-D databases of 10,000 and 100,000 descriptors (``--quick``: 5,000 and 20,000), 70 queries.

    python perf/rerank_speed.py [--quick] [--max-scores-mib 256] [--backend numpy|faiss]

DBA finds each database vector's neighbours among all the others, exactly, in query chunks of at
most ``--max-scores-mib`` of scores (no N x N matrix): N^2 D multiply-adds, the dominant cost.
Seconds are wall time of one run; memory is the peak resident memory above what the process held
before the step (Linux VmHWM, reset through /proc/self/clear_refs) and the whole process's peak.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rerank import DatabaseAugmentation, QueryExpansion  # noqa: E402
from benchmarks.search import search  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_speed import exact_peak_memory, rss_kib  # noqa: E402


def step(fn):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = rss_kib("VmRSS")
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    return out, seconds, (rss_kib("VmHWM") - base) / 1024, rss_kib("VmHWM") / 1024


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5k and 20k databases instead of 10k and 100k")
    ap.add_argument("--max-scores-mib", type=int, default=256)
    ap.add_argument("--backend", default="numpy", help="numpy | faiss (search_backend of deepagg-run)")
    args = ap.parse_args(argv)
    exact_peak_memory()
    search(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), 2)   # torch loaded before measuring
    budget = args.max_scores_mib * 2**20
    print(f"DBA k=5 then AQE k=5, 256-D float32, 70 queries, scores chunk <= {args.max_scores_mib} MiB, "
          f"search backend {args.backend}")
    print("| database | step | seconds | peak extra MiB | peak RSS MiB |")
    print("|---:|---|---:|---:|---:|")
    for n in ((5_000, 20_000) if args.quick else (10_000, 100_000)):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, 256), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        q = x[:70] + 0.5 * rng.standard_normal((70, 256), dtype=np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        (_, x2), t_dba, m_dba, p_dba = step(lambda: DatabaseAugmentation(k=5).rerank(
            q, x, max_scores_bytes=budget, backend=args.backend))
        (q2, _), t_qe, m_qe, p_qe = step(lambda: QueryExpansion(k=5).rerank(
            q, x2, max_scores_bytes=budget, backend=args.backend))
        _, t_s, m_s, p_s = step(lambda: search(q2, x2, 100, max_scores_bytes=budget))
        for name, t, m, p in (("DBA (k=5)", t_dba, m_dba, p_dba), ("AQE (k=5)", t_qe, m_qe, p_qe),
                              ("search top-100", t_s, m_s, p_s)):
            print(f"| {n:,} | {name} | {t:.2f} | {m:.0f} | {p:.0f} |")
        print(f"| {n:,} | **DBA + QE + search** | {t_dba + t_qe + t_s:.2f} | {max(m_dba, m_qe, m_s):.0f} "
              f"| {max(p_dba, p_qe, p_s):.0f} |")


if __name__ == "__main__":
    main()
