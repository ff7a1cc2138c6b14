"""PQ search at scale: deepagg's compact-code path (CompactCodes(kind="pq") codes decoded, then the
exact blocked search over the decoded database) against faiss's own IndexPQ, in the same run.

    python perf/pq_search.py [--n 1000000] [--dim 256] [--bytes 64] [--queries 100]
                             [--train 50000] [--clusters 1000] [--threads 2] [--repeats 3]

deepagg's path is what a run with ``codes=pq`` does: ``CompactCodes("pq", bytes).fit(train)``,
``X_hat = decode(encode(X))`` (``database(X)``, here in its two steps so that each is timed), then
``benchmarks.search.search(Q, X_hat, k=100)``: asymmetric scores q . x_hat, which are PQ's ADC
scores computed as one float32 matrix product over the decoded (N, D) database. faiss:
``faiss.IndexPQ(D, bytes, 8, METRIC_INNER_PRODUCT)``, ``add(X)``, ``search(Q, 100)`` (ADC with a
lookup table per query over the (N, bytes) uint8 codes), twice: with the centroids copied from
CompactCodes.centroids_ ("same codebook": the scores must equal deepagg's up to float rounding)
and trained by faiss itself on the same rows ("own training").

Only the search is timed for the speed ratio (median of ``--repeats``, after one untimed call
each, the methods taking turns); fitting, encoding, decoding and adding are timed once and
reported apart, as is each step's peak memory above what the process held before it (Linux
VmHWM, reset through /proc/self/clear_refs). Data: a Gaussian mixture (``--clusters`` centres,
unit-variance isotropic spread around each, scaled so that a point sits about 0.7 of its centre's
norm away), L2-normalised; the training rows and the queries are fresh draws from the same
mixture. Agreement: the mean overlap of the top-100 sets, the fraction of queries whose ordered
top-10 is identical, the fraction of identical codes (deepagg's NumPy encoder against faiss's
``add``) and the largest score difference, deepagg against faiss with the same codebook; and each
method's overlap with the exact float32 top-100 (the quantisation's own loss). Goal (issue 17):
deepagg's queries/s >= 0.8x faiss IndexPQ's.

The mAP-against-bytes curve the issue asks for is measured on the demo by
``deepagg-run experiment=demo_codes`` (README, "Compact codes"); this script measures speed and
agreement only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

K = 100
BLOCK = 65536            # rows generated at a time


def mixture(rng_seed: int, n: int, centres, spread: float = 0.7):
    """n rows of the mixture around ``centres`` (C, D), L2-normalised, generated in blocks."""
    import numpy as np
    c, d = centres.shape
    out = np.empty((n, d), np.float32)
    for b, s in enumerate(range(0, n, BLOCK)):
        rng = np.random.default_rng([rng_seed, b])
        e = min(s + BLOCK, n)
        x = centres[rng.integers(0, c, e - s)]
        x += (spread / np.sqrt(d)) * rng.standard_normal((e - s, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x
    return out


class Steps:
    """Seconds and peak extra memory (MiB) of one-off steps."""

    def __init__(self):
        self.rows: list[tuple[str, float, float, str]] = []

    def __call__(self, name: str, fn, note: str = ""):
        from search_speed import rss_kib
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = rss_kib("VmRSS")
        t = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t
        self.rows.append((name, seconds, (rss_kib("VmHWM") - base) / 1024, note))
        return out


def timed_search(fn, repeats: int) -> tuple[float, list[float], float, object]:
    """(median seconds, all seconds, peak extra MiB, last result) of ``fn()``."""
    from search_speed import rss_kib
    times, peak, out = [], 0.0, None
    for _ in range(repeats):
        del out
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = rss_kib("VmRSS")
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        peak = max(peak, (rss_kib("VmHWM") - base) / 1024)
    return statistics.median(times), times, peak, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="database rows")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--bytes", type=int, default=64, help="PQ sub-quantisers (bytes per code)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--train", type=int, default=50_000, help="training rows (both codebooks)")
    ap.add_argument("--clusters", type=int, default=1000, help="mixture components")
    ap.add_argument("--threads", type=int, default=2,
                    help="OpenMP / BLAS / torch threads (sets OMP_NUM_THREADS & co before numpy loads)")
    ap.add_argument("--repeats", type=int, default=3, help="timed searches per method (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prototypes", action="store_true",
                    help="also time prototypes of library changes (blocked encode, one-gather "
                         "decode, search decoding blocks of codes, ADC lookup tables)")
    ap.add_argument("--block", type=int, default=65536, help="rows per block in the prototypes")
    ap.add_argument("--lut-rows", type=int, default=262_144,
                    help="database rows the lookup-table prototype scans (extrapolated to --n)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import faiss
    import numpy as np
    import torch

    from aggregators.codes import CompactCodes
    from benchmarks.search import search
    from descriptor_io import model_name
    from search_speed import exact_peak_memory, rss_kib
    exact_peak_memory()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    n, d, m = args.n, args.dim, args.bytes
    print(f"# {dt.date.today()} {model_name()}, {os.cpu_count()} cores (shared with other work; load "
          f"average {os.getloadavg()[0]:.2f} at the start); {args.threads} threads (torch "
          f"{torch.get_num_threads()}, faiss {faiss.omp_get_max_threads()}, OMP_NUM_THREADS="
          f"{os.environ['OMP_NUM_THREADS']}); numpy {np.__version__}, torch {torch.__version__}, "
          f"faiss {faiss.__version__}")
    print(f"# {n:,} x {d} float32 database (Gaussian mixture, {args.clusters} centres, "
          f"L2-normalised), PQ {m} x 8 bits, {args.train:,} training rows, {args.queries} queries, "
          f"top-{K}; search medians of {args.repeats}")

    rng = np.random.default_rng([args.seed, 999])
    centres = (rng.standard_normal((args.clusters, d), dtype=np.float32) / np.float32(np.sqrt(d)))
    steps = Steps()
    X = steps("generate the database", lambda: mixture(args.seed + 1, n, centres))
    train = mixture(args.seed + 2, args.train, centres)
    Q = mixture(args.seed + 3, args.queries, centres)

    # --- deepagg: fit, encode, decode
    cc = steps("deepagg: CompactCodes.fit (faiss k-means)",
               lambda: CompactCodes("pq", m).fit(train))
    codes = steps("deepagg: encode (NumPy)", lambda: cc.encode(X), f"codes {n * m / 2**20:,.0f} MiB")
    X_hat = steps("deepagg: decode (NumPy)", lambda: cc.decode(codes),
                  f"decoded database {X.nbytes / 2**20:,.0f} MiB")
    # --- faiss: the same codebook, and its own training
    same = faiss.IndexPQ(d, m, 8, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(np.ascontiguousarray(cc.centroids_.ravel()), same.pq.centroids)
    same.is_trained = True
    steps("faiss (same codebook): add (encode)", lambda: same.add(X), f"codes {n * m / 2**20:,.0f} MiB")
    own = faiss.IndexPQ(d, m, 8, faiss.METRIC_INNER_PRODUCT)
    steps("faiss (own training): train", lambda: own.train(train))
    steps("faiss (own training): add (encode)", lambda: own.add(X))
    faiss_codes = faiss.vector_to_array(same.codes).reshape(n, m)
    exact = steps("exact float32 search of X (reference)", lambda: search(Q, X, K))

    # --- what deepagg's search spends, in parts (one call each)
    steps("  part: np.isfinite(X_hat).all() (search's input check)", lambda: bool(np.isfinite(X_hat).all()))
    steps("  part: Q @ X_hat.T alone (numpy GEMM, all queries)", lambda: Q @ X_hat.T,
          f"{args.queries} x {n:,} scores")

    methods = {
        "deepagg: search(Q, decode(codes), k=100)": lambda: search(Q, X_hat, K),
        "faiss IndexPQ (same codebook)": lambda: same.search(Q, K),
        "faiss IndexPQ (own training)": lambda: own.search(Q, K),
    }
    for fn in methods.values():
        fn()                                               # untimed: first-touch, thread pools
    runs: dict[str, list] = {name: [] for name in methods}
    peaks: dict[str, float] = {name: 0.0 for name in methods}
    results = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            _, times, peak, out = timed_search(fn, 1)
            runs[name] += times
            peaks[name] = max(peaks[name], peak)
            results[name] = out

    print("\n| one-off step | seconds | peak extra MiB | note |")
    print("|---|---:|---:|---|")
    for name, sec, mib, note in steps.rows:
        print(f"| {name} | {sec:.3f} | {mib:,.0f} | {note} |")

    ref = statistics.median(runs["faiss IndexPQ (same codebook)"])
    print(f"\n| search ({args.queries} queries, k={K}) | seconds (median) | min / max | queries/s | "
          f"vs faiss IndexPQ (same codebook) | peak extra MiB | resident index |")
    print("|---|---:|---:|---:|---:|---:|---|")
    index_mem = {"deepagg": f"decoded (N, D) float32: {X_hat.nbytes / 2**20:,.0f} MiB",
                 "faiss": f"uint8 codes: {faiss_codes.nbytes / 2**20:,.0f} MiB"}
    for name, times in runs.items():
        sec = statistics.median(times)
        print(f"| {name} | {sec:.3f} | {min(times):.3f} / {max(times):.3f} | "
              f"{args.queries / sec:,.1f} | {ref / sec:.2f}x | {peaks[name]:,.0f} | "
              f"{index_mem[name.split(':')[0].split(' ')[0]]} |")

    # --- agreement
    ours = results["deepagg: search(Q, decode(codes), k=100)"]
    fd, fi = results["faiss IndexPQ (same codebook)"]
    od, oi = results["faiss IndexPQ (own training)"]

    def overlap(a, b, k=K):
        return float(np.mean([len(np.intersect1d(x[:k], y[:k])) / k for x, y in zip(a, b)]))

    same_top10 = float(np.mean([np.array_equal(a[:10], b[:10]) for a, b in zip(ours.indices, fi)]))
    pos_top10 = float(np.mean(ours.indices[:, :10] == fi[:, :10]))
    differ = np.flatnonzero(~np.all(codes == faiss_codes, axis=1))      # rows coded differently
    in_results = int(np.isin(ours.indices, differ).sum() + np.isin(fi, differ).sum())
    # faiss's scores against q . decode(faiss's own codes): the ADC score, computed by deepagg's way
    faiss_decoded = cc.decode(faiss_codes[fi.ravel()]).reshape(len(Q), K, d)
    adc_diff = np.abs(np.einsum("qd,qkd->qk", Q, faiss_decoded) - fd).max()
    # items in both top-100s: deepagg's score against faiss's score of the same item
    common_diff = coded_diff = 0.0                     # same code / coded differently
    for r in range(len(Q)):
        items, a_pos, b_pos = np.intersect1d(ours.indices[r], fi[r], return_indices=True)
        diff = np.abs(ours.scores[r, a_pos] - fd[r, b_pos])
        other = np.isin(items, differ)
        common_diff = max(common_diff, float(diff[~other].max(initial=0)))
        coded_diff = max(coded_diff, float(diff[other].max(initial=0)))
    print("\nagreement, deepagg against faiss IndexPQ with the same codebook:")
    print(f"- codes identical: {1 - len(differ) / n:.6f} of the rows ({len(differ)} rows differ), "
          f"{np.mean(codes == faiss_codes):.7f} of the bytes; {in_results} of the 2 x {len(Q)} x {K} "
          "results are rows coded differently")
    print(f"- top-{K} sets: mean overlap {overlap(ours.indices, fi):.6f}; ordered top-10 identical "
          f"for {same_top10:.3f} of the queries ({pos_top10:.4f} of the top-10 positions)")
    for r in np.flatnonzero([not np.array_equal(a[:10], b[:10]) for a, b in zip(ours.indices, fi)]):
        pos = np.flatnonzero(ours.indices[r, :10] != fi[r, :10])
        coded = np.isin(np.concatenate([ours.indices[r, pos], fi[r, pos]]), differ).any()
        gap = float(np.abs(np.diff(ours.scores[r, max(0, pos[0] - 1):pos[-1] + 2])).min())
        print(f"  query {r}: top-10 positions {pos.tolist()} differ: deepagg {ours.indices[r, pos].tolist()} "
              f"faiss {fi[r, pos].tolist()}; smallest score gap there {gap:.2e}"
              + ("; a row coded differently is involved" if coded else ""))
    print(f"- scores: faiss's against q . decode(faiss's codes) max |diff| {adc_diff:.2e}; items in "
          f"both top-{K}s, deepagg's against faiss's max |diff| {common_diff:.2e} where the codes "
          f"are equal, {coded_diff:.2e} where they differ; rank by rank "
          f"{np.abs(ours.scores - fd).max():.2e}; score scale {np.abs(fd).max():.3f}")
    print(f"faiss with its own training against deepagg (different codebooks): top-{K} overlap "
          f"{overlap(ours.indices, oi):.4f}")
    print(f"overlap with the exact float32 top-{K} (quantisation loss): deepagg "
          f"{overlap(ours.indices, exact.indices):.4f}, faiss same codebook "
          f"{overlap(fi, exact.indices):.4f}, faiss own training {overlap(oi, exact.indices):.4f}; "
          f"top-10 within the exact top-10: deepagg {overlap(ours.indices, exact.indices, 10):.4f}")
    print(f"\nprocess peak RSS {resource_peak():,.0f} MiB (ru_maxrss; data "
          f"X {X.nbytes / 2**20:,.0f} MiB + X_hat {X_hat.nbytes / 2**20:,.0f} MiB + codes)")
    if args.prototypes:
        del exact
        prototypes(args, cc, codes, X, X_hat, Q, ours, ref)


def prototypes(args, cc, codes, X, X_hat, Q, ours, faiss_seconds: float) -> None:
    """Estimates for library changes (not deepagg code): a blocked encoder, a one-gather decoder,
    a search that decodes blocks of the codes as it goes (no resident decoded database), and ADC
    lookup tables applied block by block with torch gathers."""
    import numpy as np
    import torch

    from benchmarks.search import exact_topk
    m, _, sub = cc.centroids_.shape
    n, d = X.shape
    B = args.block
    norms = (cc.centroids_ ** 2).sum(2)                     # (m, 256)

    def blocked_encode():
        out = np.empty((n, m), np.uint8)
        for s in range(0, n, B):
            x = X[s:s + B]
            for j in range(m):
                out[s:s + B, j] = np.argmin(norms[j][None, :] - 2.0 * (x[:, j * sub:(j + 1) * sub]
                                                                      @ cc.centroids_[j].T), axis=1)
        return out

    def gather_decode(c=codes):
        return cc.centroids_[np.arange(m)[None, :], c].reshape(len(c), d)

    def take_decode(c=codes):
        out = np.empty((len(c), d), np.float32)
        view = out.reshape(len(c), m, sub)
        for j in range(m):
            np.take(cc.centroids_[j], c[:, j], axis=0, out=view[:, j, :])
        return out

    def blocked_search():
        cand_v, cand_i = [], []
        for s in range(0, n, B):
            block = take_decode(codes[s:s + B])
            sc = torch.from_numpy(np.matmul(Q, block.T))
            i, v = exact_topk(sc, min(K, len(block)))
            cand_v.append(v)
            cand_i.append(i + s)
        v, i = torch.cat(cand_v, 1), torch.cat(cand_i, 1)
        order = torch.argsort(i, dim=1)                     # candidates in database order, so
        v, i = v.gather(1, order), i.gather(1, order)       # exact_topk's tie rule is the index's
        top_i, top_v = exact_topk(v, K)
        return i.gather(1, top_i).numpy(), top_v.numpy()

    def lut_search(rows: int):
        q = torch.from_numpy(Q)
        cent = torch.from_numpy(cc.centroids_)                              # (m, 256, sub)
        lut = torch.einsum("qms,mcs->qmc", q.view(len(Q), m, sub), cent)    # (nq, m, 256)
        cand_v, cand_i = [], []
        for s in range(0, rows, B):
            cb = torch.from_numpy(codes[s:s + B].astype(np.int64))
            sc = torch.zeros(len(Q), len(cb))
            for j in range(m):
                sc += lut[:, j, :].index_select(1, cb[:, j])
            i, v = exact_topk(sc, min(K, len(cb)))
            cand_v.append(v)
            cand_i.append(i + s)
        return torch.cat(cand_i, 1), torch.cat(cand_v, 1)

    print(f"\nprototypes (estimates for library changes; blocks of {B:,} rows):")
    print("| prototype | seconds | peak extra MiB | check |")
    print("|---|---:|---:|---|")
    steps = Steps()
    enc = steps("blocked NumPy encode (same formula)", blocked_encode)
    steps.rows[-1] += (f"codes equal to CompactCodes.encode: {np.mean(enc == codes):.7f} of the bytes",)
    del enc
    dec = steps("one-gather decode: centroids_[arange(m), codes]", gather_decode)
    steps.rows[-1] += (f"equal to CompactCodes.decode: {np.array_equal(dec, X_hat)}",)
    del dec
    dec = steps("decode into one preallocated array: np.take(..., out=) per sub-quantiser",
                take_decode)
    steps.rows[-1] += (f"equal to CompactCodes.decode: {np.array_equal(dec, X_hat)}",)
    del dec
    blocked_search()                                        # untimed first call
    times = []
    for _ in range(args.repeats):
        idx, val = steps("search decoding blocks of codes (no resident X_hat)", blocked_search)
        times.append(steps.rows[-1][1])
        steps.rows[-1] += ("",)
    same = np.mean(idx == ours.indices)
    steps.rows[-1] = steps.rows[-1][:4] + (f"indices equal to deepagg's search: {same:.6f}; median "
                                           f"{statistics.median(times):.3f} s = "
                                           f"{faiss_seconds / statistics.median(times):.2f}x faiss's "
                                           "queries/s",)
    import faiss
    index = faiss.IndexPQ(d, m, 8, faiss.METRIC_INNER_PRODUCT)   # deepagg's codebook and codes
    faiss.copy_array_to_vector(np.ascontiguousarray(cc.centroids_.ravel()), index.pq.centroids)
    faiss.copy_array_to_vector(np.ascontiguousarray(codes).ravel(), index.codes)
    index.is_trained, index.ntotal = True, n
    index.search(Q, K)                                      # untimed first call
    times = []
    for _ in range(args.repeats):
        _, fi = steps("faiss IndexPQ holding deepagg's codes (codes copied in, no re-encoding)",
                      lambda: index.search(Q, K))
        times.append(steps.rows[-1][1])
        steps.rows[-1] += ("",)
    top10 = np.mean([np.array_equal(x[:10], y[:10]) for x, y in zip(fi, ours.indices)])
    overlap = np.mean([len(np.intersect1d(x, y)) / K for x, y in zip(fi, ours.indices)])
    steps.rows[-1] = steps.rows[-1][:4] + (f"top-{K} overlap with deepagg's search {overlap:.6f}, "
                                           f"ordered top-10 identical for {top10:.3f} of the queries; "
                                           f"median {statistics.median(times):.3f} s",)
    del index
    rows = min(n, args.lut_rows)
    steps(f"ADC lookup tables, torch gathers, first {rows:,} rows", lambda: lut_search(rows))
    sec = steps.rows[-1][1]
    steps.rows[-1] += (f"extrapolated to {n:,} rows: {sec * n / rows:.1f} s = "
                       f"{faiss_seconds / (sec * n / rows):.2f}x faiss's queries/s",)
    for name, sec, mib, _note, check in steps.rows:
        print(f"| {name} | {sec:.3f} | {mib:,.0f} | {check} |")


def resource_peak() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
