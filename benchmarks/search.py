"""Exact search by dot product (cosine similarity for L2-normalised descriptors), in bounded memory.

Ranking convention, everywhere in deepagg: database items by decreasing score, ties broken by
database order, i.e. the order of a stable sort of -score. The 0-based rank of item j is

    rank(j) = #{i : s_i > s_j} + #{i < j : s_i == s_j}.

``search`` computes the float32 scores Q @ X^T once per chunk of queries and reads both the top-k
and the exact ranks of chosen ("tracked") items from those same numbers, so that the two always
agree. No full sort is made (except when k covers the whole database): the top-k comes from a
partial selection (``torch.topk`` of k + 1, with rows whose k-th and (k+1)-th scores tie recomputed
exactly), and a tracked item's rank from counting, per row, the scores above it
(``torch.searchsorted`` against the tracked scores, then a histogram).

Memory: only one chunk of scores exists at a time. ``max_scores_bytes`` (default 256 MiB) bounds
that chunk together with its temporaries: 4 bytes per score, plus 4 while ranks are tracked (the
int32 bin of each score), plus 12 when k covers the whole database (sorted values and int64
positions); what else a chunk needs grows with k and the tracked items, not with the database.
A chunk holds at least one query. Inputs are converted to C-contiguous float32 once (no copy
when they already are).

Re-scoring a short list (``rescore=ShortList(queries, database, length)``): the search runs on
the matrices given (compact codes, decoded), then each query's first ``length`` results are scored
again exactly with the float descriptors and re-ordered by those scores (same tie rule); the
ranking below the short list keeps the first search's order. Tracked ranks are ranks in that
two-stage ranking, so every metric scores what a re-scoring system returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

#: default bound on one chunk of scores and its temporaries (bytes)
DEFAULT_MAX_SCORES_BYTES = 256 * 2**20

_SCORE_BYTES = 4        # float32 score
_TRACK_BYTES = 4        # int32 histogram bin per score (torch.bincount reads it in place)
_FULL_SORT_BYTES = 12   # sorted float32 values + int64 positions when k covers the database


@dataclass
class SearchResult:
    """What ``search`` returns.

    indices: (n_queries, k) int32 database indices, best first (the ranking convention above).
    scores:  (n_queries, k) float32, the scores of ``indices``.
    ranks:   with ``track``, one int64 array per query: the exact 0-based rank, in the whole
             ranking, of each tracked item (in the order given); else None.
    """

    indices: np.ndarray
    scores: np.ndarray
    ranks: list[np.ndarray] | None = None


@dataclass(frozen=True)
class ShortList:
    """Exact re-scoring of the first ``length`` results of a search (module docstring):
    ``queries`` (n_q, D') and ``database`` (N, D') are the float descriptors that score them."""

    queries: np.ndarray
    database: np.ndarray
    length: int


def similarity(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """(n_q, n_db) scores Q @ X^T, computed in float32 (the whole matrix: small inputs only)."""
    return np.asarray(queries, dtype=np.float32) @ np.asarray(database, dtype=np.float32).T


def rank(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Database indices by decreasing score, ties broken by database order: (n_q, k or n_db).
    A full stable sort: the reference implementation of the ranking convention."""
    order = np.argsort(-scores, axis=1, kind="stable")
    return order if k is None else order[:, :k]


BACKENDS = ("numpy", "faiss")


def search(queries: np.ndarray, database: np.ndarray, k: int | None = None, *,
           track: Sequence[np.ndarray] | None = None,
           max_scores_bytes: int = DEFAULT_MAX_SCORES_BYTES, device: str = "cpu",
           backend: str = "numpy", rescore: ShortList | None = None) -> SearchResult:
    """Exact top-k by dot product, and optionally the exact ranks of tracked items.

    queries (n_q, D), database (N, D): any real dtype, converted to float32; must be finite.
    k: ranking length kept (None or >= N: the whole ranking, by a full stable sort per chunk).
    track: one integer index array per query (database indices; any order, repeats allowed).
    max_scores_bytes: bound on one chunk of scores and its temporaries (see the module doc).
    device: torch device the scores are computed on ("cpu", "cuda", "cuda:1"); on the CPU the
    matrix product is numpy's (OpenBLAS), selection and counting are torch's.
    backend: "numpy" (the above), or "faiss" (optional dependency, ``pip install faiss-cpu``):
    faiss ``IndexFlatIP`` for a plain top-k on the CPU, where it is faster (its BLAS); the same tie
    rule is enforced, but its float32 scores may differ from numpy's in the last bit, so a near-tie
    can order differently. Searches that track ranks (metrics) always use the numpy path, so every
    metric is the same with either backend.
    rescore: the short list re-scored exactly, and its descriptors (``ShortList``; the returned
    scores are the exact ones within it, the first search's below it).
    """
    import torch

    if rescore is not None and rescore.length > 0:
        return _rescored(queries, database, k, track, rescore, max_scores_bytes=max_scores_bytes,
                         device=device, backend=backend)

    q = _as_matrix(queries, "queries")
    x = _as_matrix(database, "database")
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]} but the database {x.shape[1]}")
    n_q, n = len(q), len(x)
    k = n if k is None else int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = min(k, n)
    tracks = _check_track(track, n_q, n)
    if max_scores_bytes < 1:
        raise ValueError(f"max_scores_bytes must be >= 1, got {max_scores_bytes}")
    per_score = (_SCORE_BYTES + _TRACK_BYTES * (tracks is not None)
                 + _FULL_SORT_BYTES * (0 < k and k + 1 > n))
    chunk = max(1, int(max_scores_bytes) // max(1, n * per_score))

    indices = np.zeros((n_q, k), np.int32)
    scores = np.zeros((n_q, k), np.float32)
    ranks: list[np.ndarray] | None = [] if tracks is not None else None
    if n_q == 0 or n == 0:
        if ranks is not None:
            ranks.extend(np.zeros(len(t), np.int64) for t in tracks)
        return SearchResult(indices, scores, ranks)

    if backend not in BACKENDS:
        raise ValueError(f"search backend={backend!r}: expected one of {BACKENDS}")
    dev = torch.device(device)
    on_cpu = dev.type == "cpu"
    if backend == "faiss" and on_cpu and tracks is None and 0 < k < n:
        idx, val = faiss_topk(q, x, k)
        return SearchResult(idx, val, None)
    if on_cpu:
        buffer = np.empty((min(chunk, n_q), n), np.float32)
    else:
        x_dev = torch.from_numpy(x).to(dev)
    for s in range(0, n_q, chunk):
        e = min(s + chunk, n_q)
        if on_cpu:
            if e - s == 1 and n_q > 1:
                # a one-row product goes through gemv, whose rounding differs from gemm's: take
                # the row from a two-row product, so scores never depend on the chunking
                pair = np.matmul(q[[s, s - 1 if s else s + 1]], x.T)
                buffer[0] = pair[0]
            else:
                np.matmul(q[s:e], x.T, out=buffer[:e - s])
            sc = torch.from_numpy(buffer[:e - s])
        else:
            sc = torch.from_numpy(q[s:e]).to(dev) @ x_dev.T
        _select(sc, k, tracks, s, indices, scores, ranks)
    return SearchResult(indices, scores, ranks)


def rank_scores(scores: np.ndarray, k: int | None = None, *, track: Sequence[np.ndarray] | None = None,
                max_scores_bytes: int = DEFAULT_MAX_SCORES_BYTES) -> SearchResult:
    """``search`` of given (n_q, N) scores (a similarity matrix made elsewhere; a memory-mapped
    array is read in blocks of rows, each converted to float32, or to float64 when the scores are
    float64 or integers, so that no two of them are rounded together): the top-k and tracked ranks
    by the ranking convention; returned scores are float32. ValueError naming the rows that are
    not finite."""
    n_q, n = scores.shape
    k_kept = n if k is None else min(int(k), n)
    per_score = (_SCORE_BYTES + _TRACK_BYTES * (track is not None)
                 + _FULL_SORT_BYTES * (0 < k_kept and k_kept + 1 > n))
    chunk = max(1, int(max_scores_bytes) // max(1, n * per_score))
    wide = scores.dtype == np.float64 or np.issubdtype(scores.dtype, np.integer)
    chunk = max(1, chunk // 2) if wide else chunk

    def blocks():
        for s in range(0, n_q, chunk):
            # a writable copy of the block
            block = np.array(scores[s:s + chunk], dtype=np.float64 if wide else np.float32)
            if not np.isfinite(block).all():
                bad = s + np.flatnonzero(~np.isfinite(block).all(axis=1))
                raise ValueError(f"score row(s) {bad[:10].tolist()} hold NaN or infinite values")
            yield s, block
    return rank_score_blocks(blocks(), n_q, n, k, track=track)


def _select(sc, k: int, tracks, start: int, indices: np.ndarray, scores: np.ndarray,
            ranks: list | None) -> None:
    """Rows ``start``.. of the result from one chunk of scores ``sc`` (a 2-D torch tensor)."""
    idx, val = exact_topk(sc, k)
    indices[start:start + len(sc)] = idx.cpu().numpy()
    scores[start:start + len(sc)] = val.cpu().numpy()
    if ranks is not None:
        ranks.extend(tracked_ranks(sc, tracks[start:start + len(sc)]))


def _rescored(queries, database, k, track, short: ShortList, **search_options) -> SearchResult:
    """``search`` with ``rescore``: the first search keeps max(k, length) results, each query's
    short list is re-ordered by its exact scores, tracked ranks inside it move with it."""
    n = len(database)
    length = min(int(short.length), n)
    first = search(queries, database, max(n if k is None else min(int(k), n), length), track=track,
                   **search_options)
    q, x = _as_matrix(short.queries, "rescore queries"), _as_matrix(short.database, "rescore database")
    if len(q) != len(first.indices) or len(x) != n or q.shape[1] != x.shape[1]:
        raise ValueError(f"rescore descriptors are {q.shape} queries x {x.shape} database, the "
                         f"search {len(first.indices)} x {n} rows")

    def exact(i: int, short_list: np.ndarray) -> np.ndarray:
        # a two-row product (gemm), as ``search`` does, so a score never depends on the query count
        return np.matmul(q[[i, i]], x[short_list].T)[0]
    return reorder_short_lists(first, k, length, exact, ties="database")


def reorder_short_lists(first: SearchResult, k: int | None, length: int,
                        new_scores: Callable[[int, np.ndarray], np.ndarray],
                        ties: str = "database") -> SearchResult:
    """The ranking that re-orders each query's first ``length`` results of ``first`` (a search
    that kept at least that many, and tracked ranks if any are wanted) by decreasing
    ``new_scores(query, short_list)`` ((length,) int64 database indices -> (length,) scores);
    below the short list the first order is kept. Equal new scores go in database order
    (``ties="database"``, the ranking convention) or in their first order (``"first"``).
    Returns the top ``k`` (None: as many as ``first`` kept), the new scores inside the short
    list and the first ones below it, and tracked ranks moved with their items."""
    if ties not in ("database", "first"):
        raise ValueError(f"ties={ties!r}: expected 'database' or 'first'")
    kept_first = first.indices.shape[1]
    length = min(int(length), kept_first)
    k = kept_first if k is None else min(int(k), kept_first)
    indices, scores = first.indices[:, :k].copy(), first.scores[:, :k].copy()
    ranks = first.ranks
    kept = min(k, length)
    for i in range(len(indices)):
        short_list = first.indices[i, :length].astype(np.int64)
        rescored = new_scores(i, short_list)
        second = short_list if ties == "database" else np.arange(length)
        order = np.lexsort((second, -rescored))                 # decreasing score, then the tie rule
        indices[i, :kept], scores[i, :kept] = short_list[order[:kept]], rescored[order[:kept]]
        if ranks is not None:
            position = np.empty(length, np.int64)
            position[order] = np.arange(length)
            inside = ranks[i] < length
            ranks[i][inside] = position[ranks[i][inside]]
    return SearchResult(indices, scores, ranks)


def rank_score_blocks(blocks: Iterable[tuple[int, np.ndarray]], n_q: int, n: int, k: int | None = None,
                      *, track: Sequence[np.ndarray] | None = None) -> SearchResult:
    """``rank_scores`` of scores made block by block: ``blocks`` yields (first query row, (b, n)
    finite float32 or float64 scores) covering the n_q rows in order; only one block is held."""
    import torch

    k = n if k is None else min(int(k), n)
    tracks = _check_track(track, n_q, n)
    indices, top = np.zeros((n_q, k), np.int32), np.zeros((n_q, k), np.float32)
    ranks: list[np.ndarray] | None = [] if tracks is not None else None
    for start, block in blocks:
        _select(torch.from_numpy(np.ascontiguousarray(block)), k, tracks, start, indices, top, ranks)
    return SearchResult(indices, top, ranks)


def faiss_topk(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k (0 < k < N) by faiss's exact inner-product search, with the ranking's tie rule: the k + 1-th result
    shows rows whose boundary is tied (those are recomputed exactly), and equal scores inside the
    top k are put in index order."""
    try:
        import faiss
    except ImportError as e:
        raise ValueError("search backend=faiss needs the optional dependency: pip install "
                         f"faiss-cpu (or deepagg[faiss]); importing it failed with: {e}") from None
    # faiss.knn: IndexFlatIP's exact search without copying the database into an index
    val, idx = faiss.knn(q, x, k + 1, metric=faiss.METRIC_INNER_PRODUCT)
    out_i, out_v = idx[:, :k].astype(np.int32), val[:, :k].copy()
    for r in np.flatnonzero(val[:, k - 1] == val[:, k]):     # which tied items enter: lowest indices
        import torch    # the row again in numpy's rounding, ranked exactly on its own numbers
        row = torch.from_numpy(np.matmul(q[[r, r]], x.T)[:1])
        i, v = exact_topk(row, k)
        out_i[r], out_v[r] = i[0].numpy(), v[0].numpy()
    order = np.lexsort((out_i, -out_v), axis=1)
    return np.take_along_axis(out_i, order, 1), np.take_along_axis(out_v, order, 1)


def exact_topk(scores, k: int):
    """(indices int64, values) of the top k of each row of a 2-D torch tensor, ordered by
    decreasing score then increasing index (the ranking convention), exactly."""
    import torch

    n_rows, n = scores.shape
    if k == 0:
        return (torch.zeros((n_rows, 0), dtype=torch.int64, device=scores.device),
                scores.new_zeros((n_rows, 0)))
    if k >= n:
        val, idx = torch.sort(scores, dim=1, descending=True, stable=True)
        return idx, val
    val, idx = torch.topk(scores, k + 1, dim=1, largest=True, sorted=True)
    boundary_tie = torch.nonzero(val[:, k - 1] == val[:, k]).flatten().tolist()
    val, idx = val[:, :k].clone(), idx[:, :k].clone()
    for r in boundary_tie:   # which of the tied items enter the top k: the lowest indices
        row, t = scores[r], val[r, k - 1]
        above = torch.nonzero(row > t).flatten()
        tied = torch.nonzero(row == t).flatten()[:k - len(above)]
        idx[r] = torch.cat([above, tied])
        val[r] = row[idx[r]]
    by_index, order = torch.sort(idx, dim=1)                         # the set is exact: now order it
    val = val.gather(1, order)
    val, order = torch.sort(val, dim=1, descending=True, stable=True)  # equal scores keep index order
    return by_index.gather(1, order), val


def tracked_ranks(scores, tracks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Exact 0-based ranks (the ranking convention) of ``tracks[r]`` in row r of a 2-D torch tensor.

    #{s > v} for every tracked score v comes from one pass: each score is binned among the sorted
    tracked scores and their float32 predecessors (so that #{s >= v} = #{s > prev(v)} comes too),
    and the bins are counted. Where a tracked score is shared by other items, the items before it
    with that score are counted directly.
    """
    import torch

    n_rows, n = scores.shape
    lengths = [len(t) for t in tracks]
    t_max = max(lengths, default=0)
    if t_max == 0:
        return [np.zeros(0, np.int64) for _ in tracks]
    dev = scores.device
    padded = np.zeros((n_rows, t_max), np.int64)
    valid = np.zeros((n_rows, t_max), bool)
    for r, t in enumerate(tracks):
        padded[r, :len(t)] = t
        valid[r, :len(t)] = True
    pos = torch.from_numpy(padded).to(dev)
    valid_t = torch.from_numpy(valid).to(dev)
    v = scores.gather(1, pos)
    v_prev = torch.nextafter(v, torch.full_like(v, -float("inf")))
    inf = torch.full_like(v, float("inf"))
    edges = torch.cat([torch.where(valid_t, v, inf), torch.where(valid_t, v_prev, inf)], dim=1)
    edges = torch.sort(edges, dim=1).values
    n_bins = edges.shape[1] + 1
    bins = torch.searchsorted(edges, scores, out_int32=True)      # #{edges < s} for each score s
    bins.add_(torch.arange(n_rows, dtype=torch.int32, device=dev)[:, None] * n_bins)
    hist = torch.bincount(bins.view(-1), minlength=n_rows * n_bins).view(n_rows, n_bins)
    del bins
    at_most = hist.cumsum(1)                                       # #{s : bin <= m}
    # s > edges[m]  <=>  bin(s) >= m + 1, for any m (duplicated edges included)
    above = n - at_most.gather(1, torch.searchsorted(edges, v))
    at_least = n - at_most.gather(1, torch.searchsorted(edges, v_prev))
    out = above.cpu().numpy().astype(np.int64)
    shared = torch.nonzero(((at_least - above) > 1) & valid_t).tolist()   # other items score the same
    if shared:              # frequent enough at scale: float32 has ~2^24 values near a score
        rows = scores.numpy() if dev.type == "cpu" else scores
        values = v.cpu().numpy()
        for r, c in shared:
            j = int(padded[r, c])
            if dev.type == "cpu":
                out[r, c] += np.count_nonzero(rows[r, :j] == values[r, c])
            else:
                out[r, c] += int((rows[r, :j] == v[r, c]).sum())
    return [out[r, :lengths[r]] for r in range(n_rows)]


def _as_matrix(a: np.ndarray, what: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (n, D), got shape {a.shape}")
    if not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a).all(axis=1))
        raise ValueError(f"{what} row(s) {bad[:10].tolist()} hold NaN or infinite values; "
                         "descriptors must be finite")
    return a


def _check_track(track, n_q: int, n: int) -> list[np.ndarray] | None:
    if track is None:
        return None
    if len(track) != n_q:
        raise ValueError(f"track has {len(track)} index arrays for {n_q} queries")
    out = []
    for i, t in enumerate(track):
        t = np.asarray(t)
        if t.size and not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"track[{i}] must hold integer database indices, got dtype {t.dtype}")
        t = t.astype(np.int64).ravel()
        if t.size and (t.min() < 0 or t.max() >= n):
            raise ValueError(f"track[{i}] holds index {int(t.min() if t.min() < 0 else t.max())}, "
                             f"outside the database of {n} items")
        out.append(t)
    return out
