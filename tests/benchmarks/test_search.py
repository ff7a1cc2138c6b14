"""Blocked exact search against the full stable sort (the reference of the ranking convention)."""
import numpy as np
import pytest
import torch

from benchmarks.search import SearchResult, exact_topk, rank, search, similarity


def tied_data(rng, n, n_q, d=4):
    """Quantised descriptors (many equal scores) with duplicated database rows."""
    x = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    x[rng.integers(0, n, size=max(1, n // 5))] = x[0]
    q = rng.integers(-2, 3, size=(n_q, d)).astype(np.float32)
    q[0] = 0.0                                         # a query that scores 0 against everything
    return q, x


def reference(q, x):
    s = similarity(q, x)
    full = rank(s)
    return s, full, np.argsort(full, axis=1)           # scores, rankings, rank of each item


@pytest.mark.parametrize("seed", range(6))
def test_topk_and_tracked_ranks_equal_the_full_stable_sort(seed):
    rng = np.random.default_rng(seed)
    n, n_q = int(rng.integers(20, 400)), int(rng.integers(1, 30))
    q, x = tied_data(rng, n, n_q)
    s, full, where = reference(q, x)
    track = [rng.integers(0, n, size=int(rng.integers(0, 30))) for _ in range(n_q)]
    runs = [(k, 2**28) for k in (0, 1, n - 1, n, n + 5)]         # everything in one chunk
    runs += [(7, 1), (None, 1), (7, 8 * n * 3), (None, 20 * n * 3)]  # one query, three per chunk
    for k, budget in runs:
        res = search(q, x, k, track=track, max_scores_bytes=budget)
        kk = n if k is None else min(k, n)
        np.testing.assert_array_equal(res.indices, full[:, :kk])
        assert res.indices.dtype == np.int32 and res.scores.dtype == np.float32
        np.testing.assert_array_equal(res.scores, np.take_along_axis(s, full[:, :kk], 1))
        for i in range(n_q):
            np.testing.assert_array_equal(res.ranks[i], where[i][track[i]])
            assert res.ranks[i].dtype == np.int64


def test_rank_rule_by_hand():
    # scores 0.5, 0.9, 0.5, 0.1: item 1 first, the tied items 0 and 2 in database order, then 3
    q = np.array([[1.0]], np.float32)
    x = np.array([[0.5], [0.9], [0.5], [0.1]], np.float32)
    res = search(q, x, 2, track=[np.array([3, 2, 1, 0])])
    np.testing.assert_array_equal(res.indices, [[1, 0]])
    np.testing.assert_array_equal(res.ranks[0], [3, 2, 0, 1])


def test_a_tie_across_the_cut_keeps_the_lowest_indices():
    # six equal scores, k = 3 cuts through them: the three lowest indices, in order
    x = np.array([[0.0], [1.0], [1.0], [2.0], [1.0], [1.0], [1.0]], np.float32)
    res = search(np.array([[1.0]], np.float32), x, 3)
    np.testing.assert_array_equal(res.indices, [[3, 1, 2]])
    ti, _ = exact_topk(torch.from_numpy(x.T.copy()), 4)
    np.testing.assert_array_equal(ti.numpy(), [[3, 1, 2, 4]])


def test_scores_and_ranks_come_from_the_same_numbers():
    # float inputs (no exact ties): an item tracked at rank r < k is the r-th item of the top k
    rng = np.random.default_rng(3)
    q, x = rng.normal(size=(9, 32)), rng.normal(size=(500, 32))
    res = search(q, x, 50, track=[np.arange(500)] * 9, max_scores_bytes=4000)
    for i in range(9):
        top = np.flatnonzero(res.ranks[i] < 50)
        np.testing.assert_array_equal(res.indices[i][res.ranks[i][top]], top)
        assert sorted(res.ranks[i].tolist()) == list(range(500))


def test_float64_inputs_are_searched_in_float32():
    rng = np.random.default_rng(4)
    q, x = rng.normal(size=(5, 8)), rng.normal(size=(60, 8))
    a = search(q, x, 10)
    b = search(q.astype(np.float32), x.astype(np.float32), 10)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_empty_inputs():
    res = search(np.zeros((0, 3)), np.ones((4, 3)), 2, track=[])
    assert res.indices.shape == (0, 2) and res.ranks == []
    res = search(np.ones((2, 3)), np.zeros((0, 3)), 5, track=[np.zeros(0, int)] * 2)
    assert res.indices.shape == (2, 0) and [len(r) for r in res.ranks] == [0, 0]


def test_without_k_the_whole_ranking():
    rng = np.random.default_rng(5)
    q, x = rng.normal(size=(3, 4)), rng.normal(size=(10, 4))
    res = search(q, x)
    assert isinstance(res, SearchResult) and res.ranks is None
    np.testing.assert_array_equal(res.indices, rank(similarity(q, x)))


@pytest.mark.parametrize("call,match", [
    (lambda: search(np.ones((2, 3)), np.ones((4, 2)), 1), "dimension 3 but the database 2"),
    (lambda: search(np.ones((2, 3)), np.full((4, 3), np.nan), 1), r"database row\(s\) \[0, 1, 2, 3\].*NaN"),
    (lambda: search(np.array([[np.inf, 0, 0]]), np.ones((4, 3)), 1), "queries row"),
    (lambda: search(np.ones(3), np.ones((4, 3)), 1), "queries must be a 2-D array"),
    (lambda: search(np.ones((2, 3)), np.ones((4, 3)), -1), "k must be >= 0"),
    (lambda: search(np.ones((2, 3)), np.ones((4, 3)), 1, track=[np.array([0])]), "1 index arrays for 2"),
    (lambda: search(np.ones((1, 3)), np.ones((4, 3)), 1, track=[np.array([4])]), "index 4, outside"),
    (lambda: search(np.ones((1, 3)), np.ones((4, 3)), 1, track=[np.array([0.5])]), "integer database"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_result():
    rng = np.random.default_rng(6)
    q, x = tied_data(rng, 300, 12)
    track = [rng.integers(0, 300, size=20) for _ in range(12)]
    a = search(q, x, 17, track=track)
    b = search(q, x, 17, track=track, device="cuda")
    np.testing.assert_array_equal(a.indices, b.indices)
    for ra, rb in zip(a.ranks, b.ranks):
        np.testing.assert_array_equal(ra, rb)


def test_faiss_backend_keeps_the_ranking_convention():
    """backend=faiss (optional) gives the numpy path's top-k on data full of ties and duplicates."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    x = np.round(rng.standard_normal((3000, 8))).astype(np.float32)
    x[1000:1100] = x[:100]                                   # exact duplicates: tied scores
    q = np.round(rng.standard_normal((50, 8))).astype(np.float32)
    a, f = search(q, x, 20), search(q, x, 20, backend="faiss")
    np.testing.assert_array_equal(a.indices, f.indices)
    np.testing.assert_array_equal(a.scores, f.scores)
    with pytest.raises(ValueError, match="backend='annoy'"):
        search(q, x, 5, backend="annoy")


def two_stage_reference(q_coded, x_coded, q, x, length):
    """The re-scored ranking by hand: the coded ranking's first ``length`` items re-sorted by a
    full stable sort of their float scores, the rest in the coded order."""
    coded = rank(similarity(q_coded, x_coded))
    out = coded.copy()
    for i in range(len(q)):
        head = np.sort(coded[i, :length])             # by database index, then a stable sort by score
        out[i, :length] = head[np.argsort(-similarity(q[i:i + 1], x[head])[0], kind="stable")]
    return out


@pytest.mark.parametrize("seed", range(4))
def test_a_rescored_short_list_is_the_coded_ranking_with_its_head_sorted_by_the_floats(seed):
    from benchmarks.search import ShortList
    rng = np.random.default_rng(seed)
    n, n_q = int(rng.integers(30, 200)), int(rng.integers(1, 12))
    q, x = tied_data(rng, n, n_q)
    q_coded, x_coded = np.sign(q), np.sign(x)           # coarse "codes": many ties
    track = [rng.integers(0, n, size=int(rng.integers(0, 25))) for _ in range(n_q)]
    for length in (1, 10, n):
        full = two_stage_reference(q_coded, x_coded, q, x, length)
        where = np.argsort(full, axis=1)
        for k, budget in ((5, 2**28), (n, 2**28), (3, 1)):
            res = search(q_coded, x_coded, k, track=track, max_scores_bytes=budget,
                         rescore=ShortList(q, x, length))
            np.testing.assert_array_equal(res.indices, full[:, :k])
            head = min(k, length)                        # exact scores within the short list
            np.testing.assert_array_equal(res.scores[:, :head],
                                          np.take_along_axis(similarity(q, x), full[:, :head], 1))
            for i in range(n_q):
                np.testing.assert_array_equal(res.ranks[i], where[i][track[i]])
    exact = search(q_coded, x_coded, None, rescore=ShortList(q, x, n))   # all of it: the float ranking
    np.testing.assert_array_equal(exact.indices, rank(similarity(q, x)))
