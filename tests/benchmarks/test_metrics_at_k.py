"""GLDv2's mAP@k (denominator min(#positives, k)) and Recall@k: hand-worked cases, and the
official metric's definition written again over whole rankings, as the GLDv2 code computes it."""
import numpy as np
import pytest

from benchmarks.metrics import (average_precision_at_k, mean_average_precision,
                                mean_average_precision_from_ranks, recall_at_k)


def test_ap_at_k_by_hand():
    # 3 positives found at ranks 0 and 2 (0-based; the third is beyond): precisions 1/1 and 2/3
    assert average_precision_at_k([0, 2], 3, 2) == pytest.approx(1 / 2)           # min(3, 2) = 2
    assert average_precision_at_k([0, 2], 3, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k([0, 2], 3, 100) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k([0], 1, 100) == 1.0                  # one positive, first: 1
    assert average_precision_at_k([], 4, 100) == 0.0
    assert recall_at_k([3, 7], 4) == 1.0 and recall_at_k([3, 7], 3) == 0.0 and recall_at_k([], 1) == 0.0


def official_gldv2_map(predictions: dict, solution: dict, max_predictions: int) -> float:
    """GLDv2's retrieval mAP@k as its metrics code defines it: for each test image with a
    solution, the sum of precision at every correct prediction among the first
    ``max_predictions``, divided by min(#solution, max_predictions); averaged over the test
    images that have a solution (a missing prediction list scores 0)."""
    total = 0.0
    for key, relevant in solution.items():
        correct, precisions = 0, 0.0
        for i, p in enumerate(predictions.get(key, [])[:max_predictions]):
            if p in relevant:
                correct += 1
                precisions += correct / (i + 1)
        total += precisions / min(len(relevant), max_predictions)
    return total / len(solution)


def test_map_at_k_equals_the_official_definition_on_random_rankings():
    rng = np.random.default_rng(0)
    n_db, n_q = 300, 40
    rankings = np.stack([rng.permutation(n_db) for _ in range(n_q)])
    positives = [np.sort(rng.choice(n_db, rng.integers(0, 150), replace=False)) for _ in range(n_q)]
    junk = [np.zeros(0, np.int64)] * n_q
    got = mean_average_precision(rankings, positives, junk, map_at=(1, 10, 100), recall_at=(1, 5))
    with_gt = {i: set(p.tolist()) for i, p in enumerate(positives) if len(p)}
    predictions = {i: rankings[i].tolist() for i in range(n_q)}
    for k in (1, 10, 100):
        assert got[f"mAP@{k}"] == pytest.approx(official_gldv2_map(predictions, with_gt, k), abs=1e-12)
    for k in (1, 5):
        hits = [any(p in with_gt[i] for p in predictions[i][:k]) for i in with_gt]
        assert got[f"R@{k}"] == pytest.approx(np.mean(hits))
    assert got["n_evaluated"] == len(with_gt)


def test_the_existing_metrics_are_unchanged_by_the_new_ones():
    ranks = [np.array([0, 4]), None, np.array([1])]
    plain = mean_average_precision_from_ranks(ranks, [2, 0, 3])
    more = mean_average_precision_from_ranks(ranks, [2, 0, 3], map_at=(100,), recall_at=(1,))
    assert {k: v for k, v in more.items() if k not in ("mAP@100", "R@1")}.keys() == plain.keys()
    assert all(np.array_equal(more[k], plain[k], equal_nan=True) for k in plain)
    assert more["R@1"] == 0.5                                          # query 0 yes, query 2 no
