"""Fisher vector against a direct per-feature loop over the gradient formulas, given a GMM."""
import numpy as np
import pytest
import torch
from scipy.stats import norm

from aggregators import FisherVector
from features import LocalFeatures

W = np.array([0.3, 0.7])
MU = np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 1.0]])
VAR = np.array([[1.0, 0.5, 2.0], [0.25, 1.5, 1.0]])


def _loop_fisher_vector(x):
    """Perronnin et al. 2010, one feature and one component at a time."""
    n, k = len(x), len(W)
    gamma = np.array([[W[j] * np.prod(norm.pdf(xi, MU[j], np.sqrt(VAR[j]))) for j in range(k)]
                      for xi in x])
    gamma /= gamma.sum(axis=1, keepdims=True)
    g_mu, g_var = np.zeros_like(MU), np.zeros_like(MU)
    for i in range(n):
        for j in range(k):
            z = (x[i] - MU[j]) / np.sqrt(VAR[j])
            g_mu[j] += gamma[i, j] * z / np.sqrt(W[j])
            g_var[j] += gamma[i, j] * (z ** 2 - 1) / np.sqrt(2 * W[j])
    fv = np.r_[g_mu.ravel(), g_var.ravel()] / n
    fv = np.sign(fv) * np.sqrt(np.abs(fv))
    return fv / np.linalg.norm(fv)


def _with_hand_gmm(features):
    agg = FisherVector(n_components=2).fit(features)
    agg.weights_, agg.means_, agg.covariances_ = W, MU, VAR
    return agg


def test_matches_the_per_feature_loop():
    x = np.random.default_rng(0).normal(0.5, 1.5, (7, 3))
    f = LocalFeatures(x.astype(np.float32), np.zeros((7, 2), np.float32))
    out = _with_hand_gmm([f]).transform(f)[0]
    np.testing.assert_allclose(out, _loop_fisher_vector(f.descriptors.astype(np.float64)),
                               rtol=1e-5, atol=1e-7)


def test_learned_gmm_and_dimension(sparse_sets):
    agg = FisherVector(n_components=3).fit(sparse_sets(3, d=8))
    assert agg.weights_.shape == (3,) and agg.means_.shape == agg.covariances_.shape == (3, 8)
    assert agg.weights_.sum() == pytest.approx(1) and (agg.covariances_ > 0).all()
    assert agg.dim == 48 and agg.transform(sparse_sets(1)[0]).shape == (1, 48)
    pca = FisherVector(n_components=3, pca_dim=4).fit(sparse_sets(3, d=8))
    assert pca.means_.shape == (3, 4) and pca.dim == 24 == pca.transform(sparse_sets(2)).shape[1]


def test_bad_settings_are_named(sparse_sets):
    with pytest.raises(ValueError, match=r"n_components=50: exceeds the 40 local features"):
        FisherVector(n_components=50).fit(sparse_sets(1, n=40))
    with pytest.raises(ValueError, match=r"pca_dim=9: exceeds what 40 sampled 8-D"):
        FisherVector(n_components=2, pca_dim=9).fit(sparse_sets(1, d=8))
    with pytest.raises(ValueError, match=r"n_components=0: must be a positive integer"):
        FisherVector(n_components=0).fit(sparse_sets(1))


# ------------------------------------------------------------------ batched torch path
CPU = torch.device("cpu")


def _cosine_gap(a, b):
    return 1 - np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_torch_path_matches_the_per_feature_loop():
    x = np.random.default_rng(0).normal(0.5, 1.5, (7, 3))
    f = LocalFeatures(x.astype(np.float32), np.zeros((7, 2), np.float32))
    out = _with_hand_gmm([f])._encode_torch([f], CPU)[0]
    np.testing.assert_allclose(out, _loop_fisher_vector(f.descriptors.astype(np.float64)),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("pca_dim", [None, 4])
def test_batched_torch_path_equals_the_numpy_reference(dense_maps, sparse_sets, pca_dim):
    for fit, test in ((dense_maps(4), dense_maps(3, seed=10)),
                      (sparse_sets(4), [sparse_sets(1, n=n, seed=n)[0] for n in (7, 40, 25)])):
        agg = FisherVector(n_components=3, pca_dim=pca_dim).fit(fit)
        rng = np.random.default_rng(1)
        pos = lambda n: np.zeros((n, 2), np.float32)
        degenerate = [LocalFeatures(rng.random((1, 8), dtype=np.float32), pos(1)),     # one feature
                      LocalFeatures(np.zeros((4, 8), np.float32), pos(4))]             # all zero
        if pca_dim is None:                                                # exactly at a mean
            degenerate.append(LocalFeatures(agg.means_.astype(np.float32), pos(3)))
        batch = test + degenerate
        out = agg._encode_torch(batch, CPU)                            # torch, one call
        ref = agg.transform(batch)                                     # NumPy on the CPU
        assert _cosine_gap(out, ref).max() <= 1e-5
        np.testing.assert_allclose(out, ref, atol=1e-6)
