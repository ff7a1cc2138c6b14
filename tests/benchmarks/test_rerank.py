"""Query expansion and database-side augmentation: hand-computed cases, properties, the blocked
neighbour search against the dense computation, zero rows, bad input, the configs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.errors import ParameterError
from benchmarks.metrics import average_precision
from benchmarks.rerank import (DatabaseAugmentation, NoRerank, QueryExpansion, QueryExpansionWithDBA,
                               Reranker, SpocQueryExpansion, query_db_indices)
from benchmarks.search import rank, search, similarity

CONF = Path(__file__).resolve().parents[2] / "conf" / "rerank"


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def ranking(q, x) -> np.ndarray:
    return rank(similarity(np.atleast_2d(q), x))[0]


# Four database vectors and a query along e1, worked out by hand in the tests below:
# similarities to q: x0 0.6, x1 0.8, x2 0, x3 0  ->  ranking [1, 0, 2, 3] (x2, x3 tie: database order)
X = np.array([[0.6, 0.8, 0.0], [0.8, 0.0, 0.6], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
Q = np.array([[1.0, 0.0, 0.0]], np.float32)


def test_the_hand_case_before_reranking():
    np.testing.assert_array_equal(ranking(Q, X), [1, 0, 2, 3])


def test_aqe_k1_by_hand():
    # q' = (q + x1) / |q + x1| = (1.8, 0, 0.6) / sqrt(3.6): scores x0 1.08, x1 1.8, x2 0, x3 0.6 (/ sqrt 3.6)
    q, x = QueryExpansion(k=1).rerank(Q, X)
    np.testing.assert_allclose(q[0], np.array([1.8, 0.0, 0.6]) / np.sqrt(3.6), rtol=1e-6)
    assert x is X
    np.testing.assert_array_equal(ranking(q, x), [1, 0, 3, 2])    # x3 overtakes x2


def test_aqe_k2_by_hand():
    # q + x1 + x0 = (2.4, 0.8, 0.6), norm 2.6: scores x0 0.8, x1 2.28/2.6, x2 0.8/2.6, x3 0.6/2.6
    q, _ = QueryExpansion(k=2).rerank(Q, X)
    np.testing.assert_allclose(q[0], [2.4 / 2.6, 0.8 / 2.6, 0.6 / 2.6], rtol=1e-6)
    np.testing.assert_array_equal(ranking(q, X), [1, 0, 2, 3])


def test_alpha_qe_weights_by_hand():
    # weights 0.8^3 = 0.512 (x1) and 0.6^3 = 0.216 (x0): q + 0.512 x1 + 0.216 x0
    q, _ = QueryExpansion(k=2, alpha=3).rerank(Q, X)
    expected = unit([1 + 0.512 * 0.8 + 0.216 * 0.6, 0.216 * 0.8, 0.512 * 0.6])
    np.testing.assert_allclose(q[0], expected, rtol=1e-6)


def test_qe_skips_the_querys_own_database_image():
    # the database holds the query itself at index 4: it is not one of the k neighbours
    x = np.vstack([X, Q])
    q_own, _ = QueryExpansion(k=1).rerank(Q, x, np.array([4]))
    np.testing.assert_allclose(q_own[0], np.array([1.8, 0.0, 0.6]) / np.sqrt(3.6), rtol=1e-6)
    q_any, _ = QueryExpansion(k=1).rerank(Q, x)                  # not declared: it is its own neighbour
    np.testing.assert_allclose(q_any[0], [1.0, 0.0, 0.0], rtol=1e-6)


def test_dba_k1_by_hand():
    # x0 = e1, x1 = (0.8, 0.6), x2 = e2; nearest others: x0 -> x1, x1 -> x0 (0.8 > 0.6), x2 -> x1
    # x0' = x1' = (1.8, 0.6) / |.|, x2' = (0.8, 1.6) / |.|; q = (0.6, 0.8) ranked [1, 2, 0] before,
    # after: x2' 1.76/1.789 first, then x0' and x1' tied (1.56/1.897) in database order
    x = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32)
    q = np.array([[0.6, 0.8]], np.float32)
    np.testing.assert_array_equal(ranking(q, x), [1, 2, 0])
    q2, x2 = DatabaseAugmentation(k=1).rerank(q, x)
    assert q2 is q
    np.testing.assert_allclose(x2, [unit([1.8, 0.6]), unit([1.8, 0.6]), unit([0.8, 1.6])], rtol=1e-6)
    np.testing.assert_array_equal(ranking(q2, x2), [2, 0, 1])


def test_dba_then_qe_searches_the_augmented_database():
    x = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], np.float32)
    q = np.array([[0.6, 0.8]], np.float32)
    q2, x2 = QueryExpansionWithDBA(k=1, dba_k=1).rerank(q, x)
    # nearest augmented vector to q is x2' = unit(0.8, 1.6): q' = unit(q + x2')
    np.testing.assert_allclose(x2[2], unit([0.8, 1.6]), rtol=1e-6)
    np.testing.assert_allclose(q2[0], unit(unit([0.6, 0.8]) + unit([0.8, 1.6])), rtol=1e-6)


@pytest.mark.parametrize("reranker", [NoRerank(), QueryExpansion(k=0), DatabaseAugmentation(k=0),
                                      QueryExpansionWithDBA(k=0, dba_k=0)])
def test_off_leaves_the_rankings_unchanged(reranker):
    rng = np.random.default_rng(0)
    q, x = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(40, 5)).astype(np.float32)
    q2, x2 = reranker.rerank(q, x)
    np.testing.assert_array_equal(search(q2, x2, 40).indices, search(q, x, 40).indices)


def test_qe_with_true_matches_only_does_not_lower_ap():
    # positives 0..3 around direction u; the query leans towards a distractor (index 4): scores
    # 0.777, 0.777, 0.766 (distractor), 0.405, 0.337. Its top 2 are positives; AQE k=2 gives
    # q' ~ (0.975, 0.22, 0): positives 0.970, 0.970, 0.747, 0.699 above the distractor's 0.407
    u, v = unit([1, 0, 0]), unit([0, 1, 0])
    pos = [unit(u + e) for e in ([0, 0, 0.1], [0, 0, -0.1], [0, -0.5, 0.3], [0, -0.6, -0.3])]
    x = np.array(pos + [unit(0.2 * u + v)] + [unit([0, 0.2, 1]), unit([-1, 0.1, 0])], np.float32)
    q = np.array([unit(u + 0.8 * v)], np.float32)
    positives = np.arange(4)

    def ap(query, db):
        r = ranking(query, db)
        return average_precision(np.flatnonzero(np.isin(r, positives)), len(positives))

    before = ap(q, x)
    assert set(ranking(q, x)[:2]) <= set(positives.tolist()) and before < 1.0
    q2, _ = QueryExpansion(k=2).rerank(q, x)
    assert ap(q2, x) >= before
    assert ap(q2, x) == pytest.approx(1.0)


def test_blocked_neighbours_equal_the_dense_computation():
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, size=(300, 6)).astype(np.float32)      # many ties
    x[rng.integers(0, 300, size=30)] = x[7]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    q = x[rng.integers(0, 300, size=25)] + 0.25 * rng.integers(-1, 2, size=(25, 6)).astype(np.float32)
    own = rng.integers(-1, 300, size=25)
    k, alpha = 4, 3.0
    # dense: full similarity matrices, stable sorts, neighbour lists by hand
    s_db = similarity(x, x)
    np.fill_diagonal(s_db, -np.inf)
    nn_db = rank(s_db, k)
    w = lambda s: np.maximum(s, 0) ** alpha                     # noqa: E731
    x_dba = np.stack([unit(x[i] + sum(w(s_db[i, j]) * x[j] for j in nn_db[i])) for i in range(300)])
    s_q = similarity(q, x_dba)
    s_q[np.arange(25)[own >= 0], own[own >= 0]] = -np.inf
    nn_q = rank(s_q, k)
    q_qe = np.stack([unit(q[i] + sum(w(s_q[i, j]) * x_dba[j] for j in nn_q[i])) for i in range(25)])
    for budget in (1, 4 * 300 * 7, 2**28):
        q2, x2 = QueryExpansionWithDBA(k=k, alpha=alpha, dba_k=k, dba_alpha=alpha).rerank(
            q, x, own, max_scores_bytes=budget)
        np.testing.assert_allclose(x2, x_dba, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(q2, q_qe, rtol=1e-5, atol=1e-6)


def test_zero_rows_stay_zero_and_are_never_neighbours():
    # x1 and x3 are zero (no local features); the query's others all score < 0, so a zero row (score 0)
    # would be its nearest neighbour if it were allowed to be one
    x = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    q = np.array([[-0.6, -0.8], [0.0, 0.0]], np.float32)
    q2, x2 = QueryExpansionWithDBA(k=1, dba_k=1).rerank(q, x)
    np.testing.assert_array_equal(x2[[1, 3]], 0.0)
    np.testing.assert_allclose(x2[[0, 2]], [unit([1, 1]), unit([1, 1])], rtol=1e-6)
    np.testing.assert_allclose(q2[0], unit(unit([-0.6, -0.8]) + unit([1, 1])), rtol=1e-6)
    np.testing.assert_array_equal(q2[1], 0.0)                    # a zero query stays zero
    np.testing.assert_array_equal(search(q2, x2, 4).scores[1], 0.0)   # and matches nothing


def test_fewer_usable_neighbours_than_k_uses_those_there_are():
    x = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], np.float32)
    _, x2 = DatabaseAugmentation(k=2).rerank(np.zeros((0, 2), np.float32), x)
    np.testing.assert_allclose(x2, [unit([1, 1]), [0, 0], unit([1, 1])], rtol=1e-6)


@pytest.mark.parametrize("make,param,value", [
    (lambda: QueryExpansion(k=-1), "k", -1),
    (lambda: QueryExpansion(k=2.5), "k", 2.5),
    (lambda: QueryExpansion(k=True), "k", True),
    (lambda: QueryExpansion(alpha=-0.5), "alpha", -0.5),
    (lambda: QueryExpansion(alpha=float("nan")), "alpha", None),
    (lambda: DatabaseAugmentation(k=-3), "k", -3),
    (lambda: QueryExpansionWithDBA(dba_k=-1), "dba_k", -1),
    (lambda: QueryExpansionWithDBA(dba_alpha=-1.0), "dba_alpha", -1.0),
    (lambda: SpocQueryExpansion(k=-2), "k", -2),
])
def test_bad_hyper_parameters_name_their_key(make, param, value):
    reranker = make()                       # stored as given (scikit-learn's convention) ...
    assert reranker.get_params()[param] is not None or value is None
    with pytest.raises(ParameterError) as e:   # ... and checked in one place, before any work
        reranker.validate()
    assert e.value.param == param and e.value.owner
    assert str(e.value.with_prefix("rerank")).split("=")[0].endswith(f"rerank.{param}")
    if value is not None:
        assert e.value.value == value


@pytest.mark.parametrize("reranker,param", [(QueryExpansion(k=5), "k"), (DatabaseAugmentation(k=4), "k"),
                                            (QueryExpansionWithDBA(k=1, dba_k=4), "dba_k"),
                                            (QueryExpansionWithDBA(k=5, dba_k=1), "k")])
def test_k_larger_than_the_database_names_the_key(reranker, param):
    with pytest.raises(ParameterError, match=f"{param}=.*larger than the database allows \\(4 images\\); use {param} <= {3 if param == 'dba_k' or isinstance(reranker, DatabaseAugmentation) else 4}") as e:
        reranker.check_database_size(4)
    assert e.value.param == param
    x = np.eye(4, dtype=np.float32)
    if param == "dba_k" or isinstance(reranker, DatabaseAugmentation):   # DBA cannot run at all
        with pytest.raises(ParameterError, match="only 3 other images"):
            reranker.rerank(x[:1], x)


def test_rerankers_are_scikit_learn_estimators():
    from sklearn.base import clone
    qe = QueryExpansionWithDBA(k=3, alpha=2, dba_k=1)
    assert clone(qe).get_params() == {"k": 3, "alpha": 2, "dba_k": 1, "dba_alpha": 0.0}
    assert repr(qe) == "QueryExpansionWithDBA(alpha=2, dba_k=1, k=3)"
    assert SpocQueryExpansion(k=4).get_params() == {"k": 4} and SpocQueryExpansion().alpha == 0


def test_bad_arrays_are_named():
    with pytest.raises(ValueError, match="same dimension"):
        QueryExpansion(k=1).rerank(np.ones((1, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="query_db_index must be"):
        QueryExpansion(k=1).rerank(np.ones((2, 3)), np.ones((4, 3)), np.array([0]))
    with pytest.raises(ValueError, match="query_db_index holds 4"):
        QueryExpansion(k=1).rerank(np.ones((1, 3)), np.ones((4, 3)), np.array([4]))


def test_labels():
    assert NoRerank().label == "none"
    assert QueryExpansion(k=5).label == "AQE(k=5)"
    assert QueryExpansion(k=2, alpha=3).label == "αQE(k=2,α=3)"
    assert DatabaseAugmentation(k=5).label == "DBA(k=5)"
    assert QueryExpansionWithDBA(k=50, alpha=3, dba_k=10, dba_alpha=3).label == "αDBA(k=10,α=3)+αQE(k=50,α=3)"
    assert SpocQueryExpansion(k=5).label == "SPoC-QE(k=5) (reconstruction)"


def test_every_config_instantiates_with_its_constructor_arguments():
    names = sorted(p.stem for p in CONF.glob("*.yaml"))
    assert {"none", "aqe", "alpha_qe", "dba", "dba_aqe", "dba_alpha_qe", "spoc_qe", "diffusion",
            "diffusion_small", "k_reciprocal", "superglobal"} <= set(names)
    for name in names:
        node = OmegaConf.load(CONF / f"{name}.yaml")
        assert "_target_" in node and "name" not in node
        reranker = instantiate(node)
        assert isinstance(reranker, Reranker) and reranker.label
        assert CONF.joinpath(f"{name}.yaml").read_text().startswith("#")   # says what it is
        for key in node:
            if key != "_target_":
                assert getattr(reranker, key) == node[key], (name, key)
    assert isinstance(instantiate(OmegaConf.load(CONF / "none.yaml")), NoRerank)
    spoc = instantiate(OmegaConf.load(CONF / "spoc_qe.yaml"))
    assert "reconstruction" in spoc.label and "RECONSTRUCTION" in (CONF / "spoc_qe.yaml").read_text()
    alpha_qe = instantiate(OmegaConf.load(CONF / "alpha_qe.yaml"))
    assert alpha_qe.alpha == 3.0


def test_query_db_indices_reads_identity_only():
    images = [ImageRef(f"im{i}") for i in range(3)]
    queries = [Query(images[0], {"ok": np.array([1])}, db_index=0),
               Query(images[2], {"ok": np.array([1])}, db_index=2, box=(0, 0, 4, 4)),
               Query(ImageRef("outside"), {"ok": np.array([1])})]
    full = RetrievalDataset("d", images, queries, protocol="oxford", crop_queries=False)
    cropped = RetrievalDataset("d", images, queries, protocol="oxford", crop_queries=True)
    np.testing.assert_array_equal(query_db_indices(full), [0, 2, -1])
    np.testing.assert_array_equal(query_db_indices(cropped), [0, -1, -1])   # a crop is not its full image
