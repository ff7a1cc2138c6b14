"""Diffusion and k-reciprocal re-ranking at scale: wall time and peak memory on a synthetic
database of 100,000 x 256 (``--quick``: 20,000) with 70 queries, against a plain search.

    python perf/graph_rerank.py [--quick] [--max-scores-mib 256]

Steps, each timed alone: the database's k-NN graph (``benchmarks.neighbours``: k = 50 for
diffusion, k1 = 20 for k-reciprocal; the apps cache it in the store, so a sweep builds it once),
the plain exact search of the top 100 with 50 tracked items per query (what a scored run does),
and each method's ``rank`` given its graph (the same top 100 and tracked ranks). The goal of
issue 18: memory O(N k), no N x N, and time within 2x of the plain search plus the graph's kNN.
The data are clustered (1,000 centres, noise), so neighbourhoods are like a real database's.
Memory is the peak resident memory above what the process held before the step (VmHWM reset
through /proc/self/clear_refs); an N x N float32 matrix would be 4 N^2 bytes (37 GiB at 100k).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.diffusion import Diffusion  # noqa: E402
from benchmarks.k_reciprocal import KReciprocal  # noqa: E402
from benchmarks.neighbours import neighbour_graph  # noqa: E402
from benchmarks.search import search  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank_speed import step  # noqa: E402
from search_speed import exact_peak_memory  # noqa: E402


def clustered(n: int, d: int, rng) -> np.ndarray:
    centres = rng.standard_normal((1000, d), dtype=np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.7 * rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20,000 images instead of 100,000")
    ap.add_argument("--max-scores-mib", type=int, default=256)
    args = ap.parse_args(argv)
    exact_peak_memory()
    search(np.eye(4, dtype=np.float32), np.eye(4, dtype=np.float32), 2)   # torch loaded before measuring
    budget = args.max_scores_mib * 2**20
    n, d, n_q, k = (20_000 if args.quick else 100_000), 256, 70, 100
    rng = np.random.default_rng(0)
    x = clustered(n, d, rng)
    q = x[:n_q] + 0.3 * rng.standard_normal((n_q, d), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    track = [rng.choice(n, 50, replace=False) for _ in range(n_q)]
    opts = {"max_scores_bytes": budget}
    print(f"{n:,} x {d} float32 (clustered), {n_q} queries, top {k} + 50 tracked per query, "
          f"scores chunk <= {args.max_scores_mib} MiB; an N x N float32 matrix: {4 * n * n / 2**30:.1f} GiB")
    print("| step | seconds | peak extra MiB | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    plain, t_plain, m_plain, p_plain = step(lambda: search(q, x, k, track=track, **opts))
    rows = [("plain search (top 100, tracked)", t_plain, m_plain, p_plain)]
    totals = {}
    for name, method in (("diffusion (k=50, query_k=10, truncation=1000)", Diffusion()),
                         ("k-reciprocal (k1=20, k2=6)", KReciprocal())):
        graph, t_g, m_g, p_g = step(lambda: neighbour_graph(x, method.graph_depth, budget))
        _, t_r, m_r, p_r = step(lambda: method.rank(q, x, None, k, track=track, graph=graph, **opts))
        rows += [(f"graph kNN, k = {method.graph_depth}", t_g, m_g, p_g), (f"{name}: rank", t_r, m_r, p_r)]
        totals[name] = (t_g, t_r, max(m_g, m_r))
        del graph
    for name, t, m, p in rows:
        print(f"| {name} | {t:.2f} | {m:.0f} | {p:.0f} |")
    print()
    print("| method | graph + rank s | plain search + graph s | ratio (goal <= 2) | peak extra MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, (t_g, t_r, m) in totals.items():
        print(f"| {name} | {t_g + t_r:.2f} | {t_plain + t_g:.2f} | {(t_g + t_r) / (t_plain + t_g):.2f} | {m:.0f} |")


if __name__ == "__main__":
    main()
