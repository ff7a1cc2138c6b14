"""The post-processing steps: closed forms, and scikit-learn's own estimator checks."""
import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from aggregators import L2, LearnedWhitening, PCAWhitening, PowerNorm
from benchmarks.errors import ParameterError


@parametrize_with_checks([L2(), PowerNorm(), PCAWhitening(dim=2)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_l2_and_power_norm():
    x = np.array([[3.0, -4.0], [0.0, 0.0]])
    np.testing.assert_allclose(L2().fit(x).transform(x), [[0.6, -0.8], [0, 0]])
    np.testing.assert_allclose(PowerNorm(0.5).fit(x).transform(np.array([[4.0, -9.0]])), [[2, -3]])


def test_pca_whitening_gives_identity_covariance_and_matches_svd():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    p = PCAWhitening(dim=4).fit(X)
    Y = p.transform(X)
    np.testing.assert_allclose(np.cov(Y.T), np.eye(4), atol=1e-4)
    _, s, vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(p.components_), np.abs(vt[:4]), atol=1e-8)
    np.testing.assert_allclose(p.explained_variance_, s[:4] ** 2 / 199, rtol=1e-8)


def test_pca_gram_path_equals_covariance_path():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(10, 30))               # n < d: Gram trick
    Y = PCAWhitening(dim=5).fit(X).transform(X)
    _, s, vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    ref = (X - X.mean(0)) @ vt[:5].T / (s[:5] / 3.0)  # divide by sqrt(s^2 / (n - 1))
    np.testing.assert_allclose(np.abs(Y), np.abs(ref), rtol=1e-4, atol=1e-5)


def test_pca_dim_beyond_the_fitting_set_is_a_clear_error():
    with pytest.raises(ValueError, match=r"dim=.*at most 9"):
        PCAWhitening(dim=64).fit(np.random.default_rng(0).normal(size=(10, 100)))


def test_bad_power_is_named_and_stateless_chains_need_no_fit():
    with pytest.raises(ParameterError, match="alpha=0"):
        PowerNorm(alpha=0).fit(np.ones((2, 3)))
    x = np.array([[4.0, -9.0]], np.float32)
    out = Pipeline([("power", PowerNorm()), ("l2", L2())]).transform(x)   # never fitted
    np.testing.assert_allclose(out, [[2 / 13 ** 0.5, -3 / 13 ** 0.5]], rtol=1e-6)
    with pytest.raises(ValueError, match="3 features, but L2 is expecting 2"):
        L2().fit(x).transform(np.ones((1, 3)))


def test_a_one_image_fitting_set_is_a_parameter_error_and_empty_batches_pass():
    """The apps turn ParameterError into one line naming the setting (exit 2), not a traceback."""
    with pytest.raises(ParameterError, match=r"dim=2: .*n_samples = 1"):
        PCAWhitening(dim=2).fit(np.ones((1, 4)))
    fitted = PCAWhitening(dim=2).fit(np.random.default_rng(0).normal(size=(5, 4)))
    for step in (L2(), PowerNorm(), fitted):
        assert step.transform(np.zeros((0, 4), np.float32)).shape == (0, step.transform(np.ones((1, 4))).shape[1])


# ----------------------------------------------------------------------------- whitening variants
def test_whiten_power_and_shrinkage_follow_the_eigenvalues():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 6)) * np.array([5, 3, 2, 1, 0.5, 0.2])
    plain = PCAWhitening(dim=4, whiten=False).fit(X)
    Y = plain.transform(X).astype(np.float64)
    ev = plain.explained_variance_
    for power in (0.0, 0.25, 0.5, 1.0):
        got = PCAWhitening(dim=4, whiten_power=power, eps=0).fit(X).transform(X)
        np.testing.assert_allclose(got, Y / ev ** power, rtol=1e-5, atol=1e-6)
    got = PCAWhitening(dim=4, shrinkage=0.3, eps=0).fit(X).transform(X)
    np.testing.assert_allclose(got, Y / np.sqrt(0.7 * ev + 0.3 * ev.mean()), rtol=1e-5, atol=1e-6)
    full = PCAWhitening(dim=4, shrinkage=1.0, eps=0).fit(X).transform(X)   # a uniform scale only
    np.testing.assert_allclose(full * np.sqrt(ev.mean()), Y, rtol=1e-5, atol=1e-6)
    # the default is the one whitening of every earlier version, bit for bit
    np.testing.assert_array_equal(PCAWhitening(dim=4).fit(X).transform(X),
                                  PCAWhitening(dim=4, whiten_power=0.5, shrinkage=0.0).fit(X).transform(X))


def pairs_whitening(X, labels, dim):
    """Radenović et al.'s Lw from an explicit list of pairs (every pair i < j of a label)."""
    pairs = [(i, j) for i in range(len(X)) for j in range(i + 1, len(X)) if labels[i] >= 0 and labels[i] == labels[j]]
    diff = np.array([X[i] - X[j] for i, j in pairs])
    cs = diff.T @ diff / len(pairs)
    p = np.linalg.inv(np.linalg.cholesky(cs))
    m = X.mean(0)
    z = (X - m) @ p.T
    w, v = np.linalg.eigh(z.T @ z)
    v = v[:, np.argsort(-w)]
    return m, (v.T @ p)[:dim], cs


def test_learned_whitening_is_the_pairs_method_and_whitens_the_matching_pairs():
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(12, 5)) * 3
    labels = np.repeat(np.arange(12), 4)
    labels[-3:] = -1                                          # a few unlabelled images
    X = centres[np.repeat(np.arange(12), 4)] + rng.normal(size=(48, 5)) * np.array([1, 0.5, 2, 1, 0.1])
    lw = LearnedWhitening(dim=3).fit(X, labels)
    m, w, cs = pairs_whitening(X, labels, 3)
    np.testing.assert_allclose(lw.mean_, m)
    np.testing.assert_allclose(np.abs(lw.components_), np.abs(w), rtol=1e-8, atol=1e-10)  # up to sign
    full = LearnedWhitening(dim=None).fit(X, labels).components_
    np.testing.assert_allclose(full @ cs @ full.T, np.eye(5), atol=1e-8)   # pairs' covariance -> I
    assert lw.n_pairs_ == 11 * 6 + 1 * 0                                   # 11 full groups of 4, one of 1
    assert lw.transform(X).dtype == np.float32


def test_learned_whitening_refuses_too_few_pairs_by_name():
    X = np.random.default_rng(5).normal(size=(10, 8))
    with pytest.raises(ParameterError, match=r"^shrinkage=0.0: the 5 matching pairs span at most 5 of the 8"):
        LearnedWhitening(dim=4).fit(X, np.repeat(np.arange(5), 2))
    with pytest.raises(ParameterError, match=r"^y=.*no two fitting images share a label"):
        LearnedWhitening(dim=4).fit(X, np.arange(10))
    with pytest.raises(ParameterError, match=r"^y=None"):
        LearnedWhitening(dim=4).fit(X)
    shrunk = LearnedWhitening(dim=4, shrinkage=0.2).fit(X, np.repeat(np.arange(5), 2))
    assert shrunk.components_.shape == (4, 8)
