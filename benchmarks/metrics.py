"""Retrieval metrics with the conventions of the Oxford/revisitop evaluation code.

Rankings are (n_db,) arrays of database indices, best first. Ties in scores are broken by
database order (a stable sort of -score, see ``benchmarks.search``), so a ranking is fully
determined. The ``*_from_ranks`` forms take the positions of the relevant images instead of whole
rankings (what ``search(track=...)`` returns) and give the same numbers.
"""
from __future__ import annotations

import numpy as np

from benchmarks.errors import DatasetError


def average_precision(positive_ranks: np.ndarray, n_positives: int) -> float:
    """Oxford ``compute_ap``: trapezoidal AP from the 0-based ranks of the positives found,
    counted after junk images have been removed from the ranking.

    At the j-th positive (0-based) found at rank r, precision is taken as the mean of
    j / r (before it) and (j + 1) / (r + 1) (after it), each weighted by a recall step 1 / n_positives.
    """
    if n_positives <= 0:
        raise ValueError("average precision needs at least one positive")
    ranks = np.sort(np.asarray(positive_ranks, dtype=np.float64))
    j = np.arange(len(ranks), dtype=np.float64)
    prec_before = np.where(ranks == 0, 1.0, j / np.maximum(ranks, 1))
    prec_after = (j + 1) / (ranks + 1)
    return float(((prec_before + prec_after) / 2.0).sum() / n_positives)


def positive_ranks(ranking: np.ndarray, positives: np.ndarray, junk: np.ndarray) -> np.ndarray:
    """0-based ranks of the positives in ``ranking`` once junk images are taken out of it."""
    ranking = np.asarray(ranking)
    is_pos = np.isin(ranking, positives)
    is_junk = np.isin(ranking, junk) & ~is_pos
    kept = ~is_junk
    rank_without_junk = np.cumsum(kept) - 1
    return rank_without_junk[is_pos]


def precision_at_k(ranks: np.ndarray, k: int, n_positives: int | None = None) -> float:
    """revisitop's mP@k for one query: precision in the top k' = min(k, rank of the last positive + 1)
    (junk removed), so a query with fewer than k positives is not penalised for it. ``n_positives``
    more than the ranks given (a ranking shorter than the database, which missed some): the last
    positive lies past the list, so k' = k."""
    pos = np.asarray(ranks) + 1
    if len(pos) == 0:
        return 0.0
    kq = k if n_positives is not None and len(pos) < n_positives else min(int(pos.max()), k)
    return float((pos <= kq).sum() / kq)


def average_precision_at_k(ranks: np.ndarray, n_positives: int, k: int) -> float:
    """GLDv2's AP@k for one query: (1 / min(n_positives, k)) sum over the positives in the top k
    of precision at their rank, (j + 1) / (r + 1) for the j-th positive (0-based) found at 0-based
    rank r (junk removed). Not interpolated (unlike ``average_precision``); the denominator
    min(n_positives, k) lets a query with fewer than k positives score 1 (Weyand et al. 2020)."""
    if n_positives <= 0:
        raise ValueError("average precision needs at least one positive")
    r = np.sort(np.asarray(ranks, dtype=np.float64))
    found = r[r < k]
    return float(((np.arange(len(found)) + 1) / (found + 1)).sum() / min(n_positives, k))


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """1.0 when some positive is in the top k (junk removed), else 0.0: averaged over queries,
    the Recall@k of metric learning and place recognition."""
    r = np.asarray(ranks)
    return float(len(r) > 0 and r.min() < k)


def ranks_after_junk_removal(positive_ranks: np.ndarray, junk_ranks: np.ndarray) -> np.ndarray:
    """``positive_ranks`` (0-based, in the whole ranking) once the junk images are taken out of the
    ranking: each rank minus the number of junk ranks before it. ``junk_ranks`` must not hold a
    positive's rank (a positive listed as junk counts as a positive, as in ``positive_ranks``)."""
    r = np.asarray(positive_ranks, dtype=np.int64)
    return r - np.searchsorted(np.sort(np.asarray(junk_ranks, dtype=np.int64)), r)


def mean_average_precision(rankings: np.ndarray, positives: list[np.ndarray],
                           junk: list[np.ndarray], ks=(1, 5, 10), map_at=(), recall_at=()) -> dict:
    """mAP and mP@k over queries; queries without positives are left out (as in ``compute_map``).

    rankings: (n_queries, n_db) database indices, best first.
    map_at, recall_at: the k of GLDv2's mAP@k and of Recall@k (none by default).
    Returns {"mAP", "mP@k"..., "mAP@k"..., "R@k"..., "aps" (per query, NaN where excluded),
    "n_evaluated"}.
    """
    ranks = [positive_ranks(rankings[i], np.asarray(positives[i], dtype=np.int64),
                            np.asarray(junk[i], dtype=np.int64)) if len(positives[i]) else None
             for i in range(len(positives))]
    return mean_average_precision_from_ranks(ranks, [len(p) for p in positives], ks, map_at,
                                             recall_at)


def mean_average_precision_from_ranks(ranks: list[np.ndarray | None], n_positives: list[int],
                                      ks=(1, 5, 10), map_at=(), recall_at=()) -> dict:
    """``mean_average_precision`` from each query's positive ranks after junk removal
    (``positive_ranks`` or ``ranks_after_junk_removal``); queries with ``n_positives`` 0 are left out."""
    n_q = len(n_positives)
    aps = np.full(n_q, np.nan)
    prs = np.full((n_q, len(ks)), np.nan)
    for i in range(n_q):
        if n_positives[i] == 0:
            continue
        aps[i] = average_precision(ranks[i], n_positives[i])
        prs[i] = [precision_at_k(ranks[i], k, n_positives[i]) for k in ks]
    valid = ~np.isnan(aps)
    if not valid.any():
        raise DatasetError("no query has a positive image: mAP is undefined for this ground truth")
    out = {"mAP": float(aps[valid].mean()), "n_evaluated": int(valid.sum()), "aps": aps}
    for j, k in enumerate(ks):
        out[f"mP@{k}"] = float(prs[valid, j].mean())
    evaluated = np.flatnonzero(valid)
    for k in map_at:
        out[f"mAP@{k}"] = float(np.mean([average_precision_at_k(ranks[i], n_positives[i], k)
                                         for i in evaluated]))
    for k in recall_at:
        out[f"R@{k}"] = float(np.mean([recall_at_k(ranks[i], k) for i in evaluated]))
    return out


def ns_score(rankings: np.ndarray, groups: list[np.ndarray], top: int = 4) -> float:
    """UKBench N-S score: mean number of a query's group members (the query included) in its top 4."""
    hits = [np.isin(rankings[i][:top], groups[i]).sum() for i in range(len(groups))]
    return float(np.mean(hits))


def ns_score_from_ranks(group_ranks: list[np.ndarray], top: int = 4) -> float:
    """``ns_score`` from the 0-based ranks (in the whole ranking) of each query's group members."""
    return float(np.mean([int((np.asarray(r) < top).sum()) for r in group_ranks]))
