"""Metrics against hand-computed rankings (Oxford compute_ap conventions)."""
import numpy as np
import pytest

from benchmarks.metrics import (average_precision, mean_average_precision,
                                mean_average_precision_from_ranks, ns_score, ns_score_from_ranks,
                                positive_ranks, precision_at_k, ranks_after_junk_removal)
from benchmarks.search import rank


def test_ap_perfect_ranking_is_one():
    assert average_precision(np.array([0, 1, 2]), 3) == pytest.approx(1.0)


def test_ap_trapezoid_by_hand():
    # positives at ranks 1 and 3 (0-based) of 2 positives:
    # j=0, r=1: (0/1 + 1/2)/2 = 0.25 ; j=1, r=3: (1/3 + 2/4)/2 = 5/12 ; sum / 2
    assert average_precision(np.array([1, 3]), 2) == pytest.approx((0.25 + 5 / 12) / 2)


def test_ap_missing_positive_counts_as_zero_recall():
    # one of two positives never retrieved: only the first contributes
    assert average_precision(np.array([0]), 2) == pytest.approx(0.5)


def test_junk_is_removed_from_the_ranking():
    ranking = np.array([7, 3, 5, 1])          # 7 is junk, 3 negative, 5 positive, 1 positive
    r = positive_ranks(ranking, positives=np.array([5, 1]), junk=np.array([7]))
    np.testing.assert_array_equal(r, [1, 2])  # after dropping 7: [3, 5, 1]
    # (0/1+1/2)/2 = .25 ; (1/2+2/3)/2 = 7/12
    assert average_precision(r, 2) == pytest.approx((0.25 + 7 / 12) / 2)


def test_ties_broken_by_database_order():
    scores = np.array([[0.5, 0.9, 0.5, 0.1]])
    np.testing.assert_array_equal(rank(scores)[0], [1, 0, 2, 3])


def test_query_without_positives_is_excluded():
    rankings = np.array([[0, 1, 2], [2, 1, 0]])
    out = mean_average_precision(rankings, [np.array([0]), np.array([], dtype=int)],
                                 [np.array([], dtype=int)] * 2)
    assert out["n_evaluated"] == 1
    assert out["mAP"] == pytest.approx(1.0)
    assert np.isnan(out["aps"][1])


def test_no_query_with_positives_is_an_error():
    with pytest.raises(ValueError, match="no query has a positive"):
        mean_average_precision(np.array([[0, 1]]), [np.array([], dtype=int)], [np.array([], dtype=int)])


def test_precision_at_k_revisitop_convention():
    ranks = np.array([0, 2])                     # 1-based positions 1 and 3
    assert precision_at_k(ranks, 1) == 1.0
    assert precision_at_k(ranks, 5) == pytest.approx(2 / 3)  # k capped at the last positive (3)
    assert precision_at_k(np.array([], dtype=int), 5) == 0.0


def test_chunked_search_equals_one_full_ranking():
    from benchmarks.search import search, similarity
    rng = np.random.default_rng(0)
    q, x = rng.normal(size=(7, 5)), rng.normal(size=(30, 5))
    x[3] = x[4]                                        # a tie: database order decides
    full = rank(similarity(q, x))
    res = search(q, x, max_scores_bytes=3 * 30 * 16)   # three queries per chunk, whole rankings
    np.testing.assert_array_equal(res.indices, full)
    top = search(q, x, k=4, max_scores_bytes=2 * 30 * 4)
    np.testing.assert_array_equal(top.indices, full[:, :4])
    dense = q.astype(np.float32) @ x.T.astype(np.float32)
    np.testing.assert_allclose(top.scores, np.take_along_axis(dense, full[:, :4], 1), rtol=1e-5)
    assert (np.flatnonzero(full[0] == 3) < np.flatnonzero(full[0] == 4)).all()


def test_junk_removal_from_tracked_ranks_by_hand():
    # the ranking [7, 3, 5, 1] of test_junk_is_removed_from_the_ranking, as ranks: 5 at 2, 1 at 3, junk 7 at 0
    np.testing.assert_array_equal(ranks_after_junk_removal(np.array([2, 3]), np.array([0])), [1, 2])
    # junk at 1 and 4 before positives at 0, 3, 6: 0 -> 0, 3 -> 2, 6 -> 4
    np.testing.assert_array_equal(ranks_after_junk_removal(np.array([6, 0, 3]), np.array([4, 1])), [4, 0, 2])


def test_metrics_from_ranks_equal_metrics_from_rankings():
    rng = np.random.default_rng(1)
    n, n_q = 40, 12
    rankings = np.stack([rng.permutation(n) for _ in range(n_q)])
    positives = [np.unique(rng.integers(0, n, size=rng.integers(0, 6))) for _ in range(n_q)]
    junk = [np.unique(rng.integers(0, n, size=rng.integers(0, 6))) for _ in range(n_q)]
    positives[0] = np.array([3, 9])                    # one query with positives at least
    where = np.argsort(rankings, axis=1)
    ranks = [ranks_after_junk_removal(where[i][p], where[i][np.setdiff1d(j, p)]) if len(p) else None
             for i, (p, j) in enumerate(zip(positives, junk))]
    a = mean_average_precision(rankings, positives, junk)
    b = mean_average_precision_from_ranks(ranks, [len(p) for p in positives])
    np.testing.assert_array_equal(a.pop("aps"), b.pop("aps"))
    assert a == b
    groups = [np.union1d(p, [i]) for i, p in enumerate(positives)]
    assert ns_score(rankings, groups) == ns_score_from_ranks([where[i][g] for i, g in enumerate(groups)])
