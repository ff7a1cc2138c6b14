"""Diffusion, k-reciprocal and SuperGlobal re-ranking (benchmarks.diffusion, .k_reciprocal,
.superglobal_rerank) and the database graph (benchmarks.neighbours), each against a dense
implementation written from the papers' definitions on small N, and their bad settings."""
import numpy as np
import pytest

from benchmarks.diffusion import Diffusion, conjugate_gradient, diffusion_laplacian
from benchmarks.errors import ParameterError
from benchmarks.k_reciprocal import KReciprocal
from benchmarks.neighbours import neighbour_graph
from benchmarks.superglobal_rerank import SuperGlobalRerank


def unit(a):
    a = np.asarray(a, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def clustered(n=120, d=12, groups=8, seed=0, noise=0.35):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, d))
    return unit(centres[rng.integers(groups, size=n)] + noise * rng.normal(size=(n, d)))


def full_ranking(result):
    """(n_q, N) rankings from a SearchResult that tracked every database item."""
    out = np.empty((len(result.ranks), len(result.ranks[0])), np.int64)
    for i, r in enumerate(result.ranks):
        out[i, r] = np.arange(len(r))
    return out


def ranked(reranker, q, x, own, k=10):
    res = reranker.rank(q, x, own, k, track=[np.arange(len(x))] * len(q))
    rankings = full_ranking(res)
    np.testing.assert_array_equal(res.indices, rankings[:, :k])   # top-k and ranks agree
    return rankings


# ----------------------------------------------------------------------------- the graph
def test_neighbour_graph_is_the_brute_force_graph_without_self_and_zero_rows():
    x = clustered(60)
    x[7] = 0.0
    g = neighbour_graph(x, 5, max_scores_bytes=8 * 60 * 7)          # blocks of 7 rows
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    for i in range(60):
        if i == 7:
            assert (g.indices[i] == -1).all() and g.farthest[i] == 0
            continue
        cand = [j for j in range(60) if j not in (i, 7)]
        order = sorted(cand, key=lambda j: (-s[i, j], j))[:5]
        assert list(g.indices[i]) == order
        assert g.farthest[i] == pytest.approx(min(s[i, j] for j in range(60) if j != 7), abs=1e-6)
    assert 7 not in g.indices


# ----------------------------------------------------------------------------- diffusion
def dense_laplacian(x, k, gamma, alpha):
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    n = len(x)
    knn = np.zeros((n, n), bool)
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (-s[i, j], j))[:k]
        knn[i, others] = True
    mutual = knn & knn.T
    a = np.where(mutual, np.maximum(s, 0) ** gamma, 0.0)
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    return np.eye(n) - alpha * (inv[:, None] * a * inv[None, :])


def test_diffusion_laplacian_is_the_dense_mutual_graph():
    x = clustered(50)
    lap = diffusion_laplacian(neighbour_graph(x, 6), 3.0, 0.9).toarray()
    np.testing.assert_allclose(lap, dense_laplacian(x, 6, 3.0, 0.9), atol=1e-6)
    np.testing.assert_array_equal(lap, lap.T)


def test_conjugate_gradient_solves_a_symmetric_positive_definite_system():
    rng = np.random.default_rng(1)
    m = rng.normal(size=(30, 30))
    a, b = m @ m.T + 30 * np.eye(30), rng.normal(size=30)
    np.testing.assert_allclose(conjugate_gradient(a, b, 1e-12, 200), np.linalg.solve(a, b), atol=1e-9)
    assert not conjugate_gradient(a, b, 1e-12, 0).any()            # no iteration: x = 0


def test_diffusion_on_a_hand_worked_chain():
    """Three images on a line: 0 - 1 - 2 linked (k = 1 mutual pairs 0-1 only; with k = 2 all),
    seed on 0 only: f = (I - alpha S)^-1 y, the diffusion reaching 2 through 1."""
    x = unit([[1, 0], [np.cos(0.3), np.sin(0.3)], [np.cos(0.6), np.sin(0.6)]])
    lap = diffusion_laplacian(neighbour_graph(x, 1), 1.0, 0.5).toarray()
    # 1-NN: 0 -> 1, 1 -> 0 or 2 (equal angle: 0 by the tie rule), 2 -> 1: mutual 0-1 only
    w = float(np.cos(0.3))
    expected = np.eye(3)
    expected[0, 1] = expected[1, 0] = -0.5 * w / w      # degrees w, w: S_01 = w / sqrt(w w) = 1
    np.testing.assert_allclose(lap, expected, atol=1e-6)
    f = np.linalg.solve(lap, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(f, [4 / 3, 2 / 3, 0.0], atol=1e-6)   # (1 - 1/4)^-1 = 4/3


def dense_diffusion(q, x, own, k, query_k, gamma, alpha, truncation):
    lap = dense_laplacian(x, k, gamma, alpha)
    s = q.astype(np.float32) @ x.T
    out = []
    for i in range(len(q)):
        plain = np.argsort(-s[i], kind="stable")
        short = plain[:truncation]
        seeds = list(short[:query_k])                 # the query's own image included
        y = np.array([max(float(s[i, j]), 0) ** gamma if j in seeds else 0.0 for j in short])
        f = np.linalg.solve(lap[np.ix_(short, short)], y)
        out.append(np.concatenate([short[np.argsort(-f, kind="stable")], plain[truncation:]]))
    return np.array(out)


@pytest.mark.parametrize("truncation", [40, None])
def test_diffusion_ranks_as_the_dense_solve(truncation):
    x = clustered(90)
    q = unit(x[:12] + 0.05 * np.random.default_rng(2).normal(size=(12, 12)))
    own = np.full(12, -1)
    q[:4], own[:4] = x[:4], np.arange(4)                              # Holidays-style queries
    method = Diffusion(k=8, query_k=5, gamma=3.0, alpha=0.95, truncation=truncation, tol=1e-14,
                       max_iter=500)
    got = ranked(method, q, x, own)
    expected = dense_diffusion(q, x, own, 8, 5, 3.0, 0.95, truncation or 90)
    np.testing.assert_array_equal(got, expected)
    if truncation is not None:                                         # below it: the plain ranking
        np.testing.assert_array_equal(got[:, 40:], np.argsort(-(q @ x.T), axis=1, kind="stable")[:, 40:])


def test_diffusion_reads_the_graph_it_is_given():
    x = clustered(70)
    q = x[:5]
    method = Diffusion(k=6, truncation=30, tol=1e-14, max_iter=500)
    own = neighbour_graph(x, 6)
    np.testing.assert_array_equal(method.rank(q, x, None, 30, graph=own).indices,
                                  method.rank(q, x, None, 30).indices)
    other = clustered(70, seed=11)                    # another database's graph: another diffusion
    with_other = method.rank(q, x, None, 30, graph=neighbour_graph(other, 6)).indices
    lap = dense_laplacian(other, 6, 3.0, 0.99)
    s = q @ x.T
    for i in range(5):
        short = np.argsort(-s[i], kind="stable")[:30]
        y = np.where(np.arange(30) < 10, np.maximum(s[i, short], 0) ** 3, 0.0)
        f = np.linalg.solve(lap[np.ix_(short, short)], y)
        np.testing.assert_array_equal(with_other[i], short[np.argsort(-f, kind="stable")])
    assert (with_other != method.rank(q, x, None, 30).indices).any()


@pytest.mark.parametrize("params, key", [({"alpha": 1.0}, "alpha"), ({"alpha": 0.0}, "alpha"),
                                         ({"k": 0}, "k"), ({"gamma": 0}, "gamma"),
                                         ({"query_k": 20, "truncation": 10}, "query_k")])
def test_diffusion_refuses_bad_settings_by_name(params, key):
    with pytest.raises(ParameterError, match=rf"^{key}="):
        Diffusion(**params).validate()


def test_diffusion_refuses_a_graph_larger_than_the_database_before_any_work():
    with pytest.raises(ParameterError, match=r"^k=50: larger than the database allows \(20 images\)"):
        Diffusion(k=50).check_database_size(20)
    Diffusion(k=19, truncation=1000, query_k=10).check_database_size(20)   # truncation: at most N


# ----------------------------------------------------------------------------- k-reciprocal
class ZhongDense:
    """Zhong et al.'s encoding of a gallery x (all dense, from the paper): similarities s,
    row-normalised distances d, initial ranks (self first), reciprocal sets, V and its local QE."""

    def __init__(self, x, k1, k2):
        n = len(x)
        self.s = s = x.astype(np.float64) @ x.T.astype(np.float64)
        d = np.maximum(2 - 2 * s, 0)
        np.fill_diagonal(d, 0)
        self.d = d / d.max(axis=1, keepdims=True)
        self.rank = [[i] + sorted((j for j in range(n) if j != i), key=lambda j: (-s[i, j], j))
                     for i in range(n)]
        self.h = int(np.around(k1 / 2))
        v = np.zeros((n, n))
        for i in range(n):
            r = self.recip(i, k1)
            exp = list(r)
            for c in r:
                rc = self.recip(c, self.h)
                if len(set(rc) & set(r)) > 2 / 3 * len(rc):
                    exp += rc
            exp = np.unique(exp)
            w = np.exp(-self.d[i, exp])
            v[i, exp] = w / w.sum()
        self.v = v
        self.v_qe = np.array([v[self.rank[i][:k2]].mean(0) for i in range(n)]) if k2 > 1 else v

    def recip(self, i, m):
        return [j for j in self.rank[i][:m + 1] if i in self.rank[j][:m + 1]]


def zhong_dense(x, k1, k2, lam):
    """Zhong et al.'s final distances with probe = gallery = x."""
    z = ZhongDense(x, k1, k2)
    mins = np.minimum(z.v_qe[:, None, :], z.v_qe[None, :, :]).sum(2)
    return (1 - lam) * (1 - mins / (2 - mins)) + lam * z.d


def test_k_reciprocal_of_database_queries_is_zhongs_on_the_database():
    x = clustered(80, seed=3)
    own = np.array([0, 5, 17, 42, 79])
    got = ranked(KReciprocal(k1=6, k2=3, lambda_value=0.3), x[own], x, own)
    final = zhong_dense(x, 6, 3, 0.3)[own]
    np.testing.assert_array_equal(got, np.argsort(final, axis=1, kind="stable"))


def dense_new_node(q, x, k1, k2, lam):
    """The query as one more node (index N) whose own row is computed on database + query,
    the database rows on the database alone (module docstring of benchmarks.k_reciprocal)."""
    n = len(x)
    z = ZhongDense(x, k1, k2)
    s, rank, recip, h, v, vqe = z.s, z.rank, z.recip, z.h, z.v, z.v_qe
    out = []
    for qi in q:
        sq = x.astype(np.float32) @ qi.astype(np.float32)
        dq = np.maximum(2 - 2 * sq.astype(np.float64), 0)
        dq = dq / dq.max()
        order = sorted(range(n), key=lambda j: (-sq[j], j))
        near = order[:k1]
        # q among j's k1 nearest of database + query: it beats j's k1-th other neighbour
        r = [j for j in near if sq[j] > s[j, rank[j][k1]]]
        exp = set(r)
        for c in r:
            rc = recip(c, h)
            if len(set(rc) & set(r)) > 2 / 3 * len(rc):
                exp |= set(rc)
        exp = np.array(sorted(exp), dtype=int)
        w = np.exp(-dq[exp])
        vq = np.zeros(n)
        vq[exp] = w / (w.sum() + 1)                      # + the query's own weight exp(0)
        vq = (vq + v[order[:k2 - 1]].sum(0)) / k2
        m = np.minimum(vq[None, :], vqe).sum(1)
        out.append((1 - lam) * (1 - m / (2 - m)) + lam * dq)
    return np.array(out)


def test_k_reciprocal_of_new_queries_is_the_dense_new_node():
    x = clustered(80, seed=4)
    q = unit(x[:6] + 0.2 * np.random.default_rng(5).normal(size=(6, 12)))
    got = ranked(KReciprocal(k1=7, k2=4, lambda_value=0.2), q, x, None)
    np.testing.assert_array_equal(got, np.argsort(dense_new_node(q, x, 7, 4, 0.2), axis=1, kind="stable"))


def test_k_reciprocal_at_lambda_one_is_the_plain_ranking():
    x = clustered(60, seed=6)
    q = unit(x[:5] + 0.1)
    got = ranked(KReciprocal(k1=5, k2=1, lambda_value=1.0), q, x, None)
    np.testing.assert_array_equal(got, np.argsort(-(q @ x.T), axis=1, kind="stable"))


def test_k_reciprocal_refuses_bad_settings_by_name():
    with pytest.raises(ParameterError, match=r"^lambda_value="):
        KReciprocal(lambda_value=1.5).validate()
    with pytest.raises(ParameterError, match=r"^k1=20: larger than the database allows"):
        KReciprocal(k1=20).check_database_size(15)


# ----------------------------------------------------------------------------- SuperGlobal
def superglobal_loops(q, x, M, K, beta):
    """MDescAug + RerankwMDA as the reference code's steps, one query at a time, in loops."""
    out = []
    for qi in q:
        plain = np.argsort(-(x @ qi), kind="stable")
        top = plain[:M]
        c = x[top].astype(np.float64)
        aug = np.zeros_like(c)
        for j in range(M):
            sims = [(float(c[j] @ c[t]), t) for t in range(M) if t != j]
            best = sorted(sims, key=lambda p: (-p[0], p[1]))[:K]
            num, den = c[j].copy(), 1.0
            for sjt, t in best:
                num += beta * sjt * c[t]
                den += beta * sjt
            aug[j] = num / den
        s1 = aug @ qi.astype(np.float64)
        pre = np.argsort(-s1, kind="stable")
        mda = aug[pre[:K + 1]].max(axis=0)
        final = (s1 + aug @ mda) / 2
        out.append(np.concatenate([top[np.argsort(-final, kind="stable")], plain[M:]]))
    return np.array(out)


def test_superglobal_ranks_as_its_steps_in_loops():
    x = clustered(70, seed=7)
    q = unit(x[:5] + 0.1 * np.random.default_rng(8).normal(size=(5, 12)))
    got = ranked(SuperGlobalRerank(M=30, K=4, beta=0.15), q, x, None)
    np.testing.assert_array_equal(got, superglobal_loops(q, x, 30, 4, 0.15))


def test_superglobal_takes_at_most_the_database_and_refuses_too_many_neighbours():
    x = clustered(40, seed=9)
    got = ranked(SuperGlobalRerank(M=400, K=3), x[:3], x, None)
    np.testing.assert_array_equal(got, superglobal_loops(x[:3], x, 40, 3, 0.15))
    with pytest.raises(ParameterError, match=r"^K=9: needs K < M"):
        SuperGlobalRerank(M=9, K=9).validate()
    with pytest.raises(ParameterError, match=r"^K=9: more neighbours than the 5 re-ranked"):
        SuperGlobalRerank(M=400, K=9).check_database_size(5)


@pytest.mark.parametrize("method", [Diffusion(k=5, truncation=20), KReciprocal(k1=5),
                                    SuperGlobalRerank(M=20, K=3)])
def test_ranking_methods_have_no_descriptor_output(method):
    with pytest.raises(TypeError, match="use rank"):
        method.rerank(np.zeros((1, 2)), np.zeros((3, 2)))


def test_k_reciprocal_expands_new_queries_past_k1_when_k2_asks():
    x = clustered(60, seed=12)
    q = unit(x[:4] + 0.2 * np.random.default_rng(13).normal(size=(4, 12)))
    got = ranked(KReciprocal(k1=3, k2=8, lambda_value=0.3), q, x, None)
    np.testing.assert_array_equal(got, np.argsort(dense_new_node(q, x, 3, 8, 0.3), axis=1, kind="stable"))


@pytest.mark.parametrize("method", [Diffusion(k=5, truncation=20), KReciprocal(k1=5),
                                    SuperGlobalRerank(M=20, K=3)])
def test_a_query_without_features_keeps_the_plain_order(method):
    x = clustered(50, seed=14)
    x[[3, 30]] = 0.0
    q = np.vstack([np.zeros((1, 12), np.float32), x[:2]])
    got = ranked(method, q, x, None)
    np.testing.assert_array_equal(got[0], np.arange(50))              # all scores 0: database order
    assert np.isfinite(method.rank(q, x, None, 10).scores).all()
