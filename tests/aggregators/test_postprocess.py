"""The post-processing steps: closed forms, and scikit-learn's own estimator checks."""
import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from aggregators import L2, PCAWhitening, PowerNorm
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
