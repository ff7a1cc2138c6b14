"""evaluate (blocked search, tracked ranks) against evaluate_rankings (full rankings), every protocol,
on descriptors with ties, on constructed and on the real ground truth."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks import evaluate, evaluate_rankings, evaluate_similarity
from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.ground_truth import read_ground_truth
from benchmarks.search import rank, similarity


def tied_descriptors(rng, n, d=6):
    x = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    x[rng.integers(0, n, size=max(1, n // 6))] = x[n // 2]        # duplicated rows
    x[rng.integers(0, n, size=max(1, n // 20))] = 0.0             # images without features
    return x


def dataset(protocol, n, relevant, db_index=None, name="synthetic"):
    images = [ImageRef(f"im{i}") for i in range(n)]
    db_index = db_index or [None] * len(relevant)
    queries = [Query(image=images[d] if d is not None else ImageRef(f"q{i}"), relevant=r, db_index=d)
               for i, (r, d) in enumerate(zip(relevant, db_index))]
    return RetrievalDataset(name=name, images=images, queries=queries, protocol=protocol)


def random_relevance(rng, n, n_q, kinds):
    pick = lambda m: np.unique(rng.integers(0, n, size=int(rng.integers(0, m))))  # noqa: E731
    rel = [{k: pick(12) for k in kinds} for _ in range(n_q)]
    rel[0][kinds[0]] = np.array([1, n - 1])                       # some query has positives
    rel[1][kinds[-1]] = np.union1d(rel[1][kinds[-1]], rel[1][kinds[0]][:1])   # a positive also listed as junk
    return rel


def same_metrics(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


def check(ds, q, x, top_k=10, **options):
    full = rank(similarity(q, x))
    at_k = {"map_at": (1, 10, 100), "recall_at": (1, 5)}    # mAP@k and R@k from tracked ranks too
    expected = evaluate_rankings(ds, full, **at_k)
    got, res = evaluate(ds, q, x, top_k=top_k, **at_k, **options)
    same_metrics(got, expected)
    np.testing.assert_array_equal(res.indices, full[:, :top_k])
    budget = {"max_scores_bytes": options["max_scores_bytes"]} if "max_scores_bytes" in options else {}
    from_scores, res = evaluate_similarity(ds, similarity(q, x), top_k=top_k, **at_k, **budget)
    same_metrics(from_scores, expected)                      # a similarity made elsewhere
    np.testing.assert_array_equal(res.indices, full[:, :top_k])
    return got


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("protocol,kinds", [("oxford", ("ok", "junk")), ("holidays", ("ok", "junk")),
                                            ("revisited", ("easy", "hard", "junk"))])
def test_equal_to_full_rankings_with_ties(seed, protocol, kinds):
    rng = np.random.default_rng(seed)
    n, n_q = int(rng.integers(30, 300)), int(rng.integers(2, 25))
    x = tied_descriptors(rng, n)
    q = np.concatenate([x[rng.integers(0, n, size=n_q - 1)], np.zeros((1, x.shape[1]), np.float32)])
    ds = dataset(protocol, n, random_relevance(rng, n, n_q, kinds))
    for budget in (1, 2**28):
        check(ds, q, x, top_k=int(rng.integers(1, n + 3)), max_scores_bytes=budget)


@pytest.mark.parametrize("seed", range(3))
def test_ukbench_ns_and_map_equal_to_full_rankings(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(5, 40))
    n = 4 * groups
    x = tied_descriptors(rng, n)
    rel = [{"ok": np.array([j for j in range(4 * (i // 4), 4 * (i // 4) + 4) if j != i]),
            "junk": np.zeros(0, np.int64)} for i in range(n)]
    ds = dataset("ukbench", n, rel, db_index=list(range(n)))
    m = check(ds, x.copy(), x, top_k=4, max_scores_bytes=int(rng.integers(1, 4000)))
    assert 0 <= m["N-S"] <= 4


def test_a_truncated_ranking_counts_the_positives_outside_it_as_never_found():
    """Positives 0 and 3 of 6 images; the list stops after 3 (1, 0, 5): AP = (0/1 + 1/2) / 2 / 2
    (compute_ap's trapezoid at rank 1, the other positive absent), AP@2 = (1/2) / min(2, 2)."""
    ds = dataset("oxford", 6, [{"ok": np.array([0, 3]), "junk": np.zeros(0, np.int64)}])
    m = evaluate_rankings(ds, np.array([[1, 0, 5]]), ks=(1,), map_at=(2,), recall_at=(1, 2))
    assert m["mAP"] == 0.125 and m["mAP@2"] == 0.25 and m["mP@1"] == 0.0
    assert m["R@1"] == 0.0 and m["R@2"] == 1.0
    padded = evaluate_rankings(ds, np.array([[1, 0, 5, -1, -1]]), ks=(1,), map_at=(2,), recall_at=(1, 2))
    same_metrics(padded, m)                              # a CSV row padded with -1


def test_mp_at_k_of_a_short_ranking_equals_that_of_any_full_ranking_it_begins():
    """Five positives, one in a list of ten: mP@5 and mP@10 as for the full ranking (the last
    positive lies past the list, so k' = k), not 1."""
    positives = np.array([0, 11, 12, 13, 14])
    ds = dataset("oxford", 20, [{"ok": positives, "junk": np.zeros(0, np.int64)}])
    full = np.array([[0, *range(1, 11), *range(11, 20)]])
    short, whole = evaluate_rankings(ds, full[:, :10]), evaluate_rankings(ds, full)
    assert short["mP@5"] == whole["mP@5"] == 0.2 and short["mP@10"] == whole["mP@10"] == 0.1


def test_a_float64_similarity_is_ranked_without_rounding_to_float32():
    ds = dataset("oxford", 4, [{"ok": np.array([3]), "junk": np.zeros(0, np.int64)}])
    scores = np.array([[0.9, 1 - 3e-9, 1 - 2e-9, 1 - 1e-9]])      # equal in float32
    metrics, res = evaluate_similarity(ds, scores, top_k=4)
    np.testing.assert_array_equal(res.indices, [[3, 2, 1, 0]])
    assert metrics["mAP"] == 1.0


def test_perfect_and_worst_rankings_by_hand():
    # one query, database of 5: positives 0 and 1, junk 2
    x = np.array([[5.0], [4.0], [3.0], [2.0], [1.0]], np.float32)
    ds = dataset("oxford", 5, [{"ok": np.array([0, 1]), "junk": np.array([2])}])
    m, _ = evaluate(ds, np.array([[1.0]], np.float32), x)
    assert m["mAP"] == pytest.approx(1.0)
    m, _ = evaluate(ds, np.array([[-1.0]], np.float32), x)        # order 4, 3, 2(junk), 1, 0
    # positives at ranks 2 and 3 after junk removal: ((0 + 1/3)/2 + (1/3 + 2/4)/2) / 2
    assert m["mAP"] == pytest.approx(((1 / 3) / 2 + (1 / 3 + 1 / 2) / 2) / 2)


def real_dataset(shared_data, name, protocol):
    path = shared_data / "ground_truth" / f"gnd_{name}.mat"
    if not path.is_file():
        pytest.skip(f"real ground truth {path} not found")
    gt = read_ground_truth(path)
    images = [ImageRef(n) for n in gt.imlist]
    queries = [Query(image=images[d], relevant=r, db_index=d) for d, r in zip(gt.query_db, gt.relevant)]
    return RetrievalDataset(name=name, images=images, queries=queries, protocol=protocol)


@pytest.mark.parametrize("name,protocol", [("oxford5k", "oxford"), ("paris6k", "oxford"),
                                           ("holidays", "holidays")])
def test_real_ground_truth(shared_data, name, protocol):
    ds = real_dataset(shared_data, name, protocol)
    rng = np.random.default_rng(0)
    x = tied_descriptors(rng, len(ds), d=8)
    q = x[[qu.db_index for qu in ds.queries]] + rng.integers(-1, 2, size=(len(ds.queries), 8))
    m = check(ds, q.astype(np.float32), x, max_scores_bytes=2**22)
    assert m["n_evaluated"] == sum(len(qu.relevant["ok"]) > 0 for qu in ds.queries)


def test_real_ground_truth_as_a_revisited_protocol(shared_data):
    # Oxford5k's positives split into easy (first half) and hard (second half)
    ox = real_dataset(shared_data, "oxford5k", "oxford")
    queries = [Query(image=qu.image, db_index=qu.db_index,
                     relevant={"easy": qu.relevant["ok"][::2], "hard": qu.relevant["ok"][1::2],
                               "junk": qu.relevant["junk"]}) for qu in ox.queries]
    ds = RetrievalDataset(name="rox", images=ox.images, queries=queries, protocol="revisited")
    rng = np.random.default_rng(1)
    x = tied_descriptors(rng, len(ds), d=8)
    m = check(ds, x[[qu.db_index for qu in ds.queries]] * 2, x, max_scores_bytes=2**21)
    assert {"E/mAP", "M/mAP", "H/mAP", "mAP", "aps", "H/mP@10"} <= m.keys()


def test_counts_are_checked():
    ds = dataset("oxford", 5, [{"ok": np.array([0]), "junk": np.zeros(0, int)}])
    with pytest.raises(ValueError, match="2 query descriptors for 1 queries"):
        evaluate(ds, np.ones((2, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="4 database descriptors for 5 images"):
        evaluate(ds, np.ones((1, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="no query has a positive"):
        evaluate(dataset("oxford", 5, [{"ok": np.zeros(0, int), "junk": np.zeros(0, int)}]),
                 np.ones((1, 3)), np.ones((5, 3)))



def test_an_unscorable_dataset_is_named_before_any_work():
    from benchmarks.errors import DatasetError
    from benchmarks.evaluation import check_scorable
    none = np.array([], np.int64)
    with pytest.raises(DatasetError, match="mine: no query has a positive"):
        check_scorable(dataset("oxford", 3, [{"ok": none, "junk": np.array([1])}], name="mine"))
    with pytest.raises(DatasetError, match="no query has a positive"):   # Medium counts
        check_scorable(dataset("revisited", 3, [{"easy": none, "hard": none, "junk": np.array([0])}]))
    with pytest.raises(DatasetError, match="no database images"):
        check_scorable(dataset("oxford", 0, []))
    with pytest.raises(DatasetError, match="no queries"):
        check_scorable(dataset("oxford", 2, []))
    check_scorable(dataset("revisited", 3, [{"easy": none, "hard": np.array([2]), "junk": none}]))


def test_revisited_data_without_any_easy_positive_scores_easy_nan_and_the_rest():
    none = np.array([], np.int64)
    ds = dataset("revisited", 3, [{"easy": none, "hard": np.array([2]), "junk": none}])
    m = evaluate_rankings(ds, np.array([[2, 0, 1]]))
    assert m["M/mAP"] == m["mAP"] == 1.0 and m["H/mAP"] == 1.0
    assert np.isnan(m["E/mAP"]) and np.isnan(m["E/mP@1"]) and m["E/n_evaluated"] == 0
    q = np.eye(3, dtype=np.float32)[[2]]
    same, _ = evaluate(ds, q, np.eye(3, dtype=np.float32))        # the blocked search agrees
    assert same["M/mAP"] == 1.0 and np.isnan(same["E/mAP"])


def test_matching_groups_join_each_query_with_its_positives_across_queries():
    from benchmarks.evaluation import matching_groups
    # query 0 (image 0) matches 1, 2; query 1 (not in the database) finds 2 and 3: one group;
    # query 2 (image 5) matches 6; image 4 matches nothing; query 3 has no positive
    ds = dataset("oxford", 8, [{"ok": [1, 2], "junk": [7]}, {"ok": [2, 3]}, {"ok": [6]}, {"ok": []}],
                 db_index=[0, None, 5, 4])
    g = matching_groups(ds)
    assert g[0] == g[1] == g[2] == g[3] >= 0 and g[5] == g[6] >= 0 and g[0] != g[5]
    assert g[4] == -1 and g[7] == -1                       # junk is no match
    rox = dataset("revisited", 5, [{"easy": [1], "hard": [2], "junk": [3]}], db_index=[None])
    assert (matching_groups(rox)[[1, 2]] >= 0).all() and matching_groups(rox)[1] == matching_groups(rox)[2]
    assert matching_groups(rox)[3] == -1 and matching_groups(rox)[0] == -1
