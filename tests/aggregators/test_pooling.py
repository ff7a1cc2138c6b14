"""Sum / SPoC / max pooling and post-processing against closed forms."""
import numpy as np
import pytest

from aggregators import L2, MaxPooling, PCAWhitening, PowerNorm, SumPooling
from aggregators.pooling import center_prior_weights
from features import LocalFeatures


def _map(h, w, d, seed=0):
    return LocalFeatures.from_map(np.random.default_rng(seed).random((d, h, w)).astype(np.float32))


def test_sum_pooling_is_the_channel_sum():
    f = _map(3, 4, 5)
    agg = SumPooling().fit([f])
    np.testing.assert_allclose(agg.transform(f), f.descriptors.sum(0), rtol=1e-6)
    assert agg.dim == 5


def test_max_pooling_is_the_channel_max():
    f = _map(3, 4, 5)
    np.testing.assert_array_equal(MaxPooling().fit([f]).transform(f), f.descriptors.max(0))


def test_center_prior_closed_form():
    # 3 x 3 grid: sigma = 3/6 = 0.5; centre cell weight 1, edge cells exp(-1/(2*0.25)) = e^-2,
    # corner cells e^-4 (cell centres at 0.5, 1.5, 2.5; map centre at 1.5)
    f = _map(3, 3, 2)
    w = center_prior_weights(f).reshape(3, 3)
    e2, e4 = np.exp(-2), np.exp(-4)
    np.testing.assert_allclose(w, [[e4, e2, e4], [e2, 1, e2], [e4, e2, e4]], rtol=1e-6)
    agg = SumPooling(center_prior=True).fit([f])
    np.testing.assert_allclose(agg.transform(f), w.ravel() @ f.descriptors, rtol=1e-5)


def test_center_prior_sigma_uses_the_shorter_side():
    f = _map(3, 9, 1)  # sigma = 3/6; the centre is (4.5, 1.5)
    w = center_prior_weights(f).reshape(3, 9)
    assert w[1, 4] == pytest.approx(1.0)
    assert w[1, 5] == pytest.approx(np.exp(-1 / (2 * 0.25)))


def test_batch_equals_single_and_rejects_empty_and_nan():
    fs = [_map(2, 2, 3, s) for s in range(3)]
    agg = SumPooling().fit(fs)
    np.testing.assert_allclose(agg.transform(fs), np.stack([agg.transform(f) for f in fs]))
    empty = LocalFeatures(np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32))
    with pytest.raises(ValueError, match="no local features"):
        agg.transform(empty)
    bad = LocalFeatures(np.full((1, 3), np.nan, np.float32), np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        agg.transform(bad)


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
