"""Triangulation embedding: whitening, encoding against a per-feature loop, democratic weights."""
import numpy as np
import pytest
import torch

from aggregators import TriangulationEmbedding
from aggregators.functional import democratic_weights
from features import LocalFeatures


def test_democratic_weights_equalise_contributions():
    rng = np.random.default_rng(0)
    phi = rng.standard_normal((60, 20)) * rng.random((60, 1)) * 3   # some negative dot products
    k_pos = np.maximum(phi @ phi.T, 0)

    def spread(lam):
        c = lam * (k_pos @ lam)          # feature i's contribution lambda_i sum_j lambda_j k+_ij
        return (c.max() - c.min()) / c.mean()

    assert spread(np.ones(60)) > 1
    assert spread(democratic_weights(phi @ phi.T, n_iter=10, damping=0.5)) < 1e-2
    assert spread(democratic_weights(phi @ phi.T, n_iter=60, damping=0.5)) < 1e-9


def test_whitened_embedding_of_the_fitting_sample(sparse_sets):
    fs = sparse_sets(4, n=40, d=4)                         # 160 features, all sampled
    x = np.vstack([f.descriptors for f in fs])
    full = TriangulationEmbedding(n_anchors=2, drop_components=0).fit(fs)
    phi = full.embed(x)
    assert phi.shape == (160, 8)
    np.testing.assert_allclose(phi.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(np.cov(phi.T), np.eye(8), atol=1e-4)
    dropped = TriangulationEmbedding(n_anchors=2).fit(fs)  # default: drop d = 4 leading components
    assert dropped.dim == 4
    np.testing.assert_allclose(dropped.embed(x), phi[:, 4:], atol=1e-4)


@pytest.mark.parametrize("democratic", [False, True])
def test_encoding_matches_a_per_feature_loop(sparse_sets, democratic):
    fs = sparse_sets(4, n=40, d=4)
    agg = TriangulationEmbedding(n_anchors=3, democratic=democratic, alpha=0.5).fit(fs)
    x = fs[0].descriptors.astype(np.float64)
    rows = []
    for xi in x:
        phi0 = np.concatenate([(xi - c) / np.linalg.norm(xi - c) for c in agg.anchors_])
        rows.append((phi0 - agg.mean_) @ agg.projection_)
    phi = np.array(rows)
    lam = democratic_weights(phi @ phi.T, 10, 0.5) if democratic else np.ones(len(x))
    psi = lam @ phi
    psi = np.sign(psi) * np.sqrt(np.abs(psi))
    np.testing.assert_allclose(agg.transform(fs[0])[0], psi / np.linalg.norm(psi), atol=2e-5)


def test_dimensions(sparse_sets):
    fs = sparse_sets(4, n=40, d=4)
    assert TriangulationEmbedding(n_anchors=1).fit(fs).dim == 4       # k = 1: nothing dropped
    assert TriangulationEmbedding(n_anchors=3).fit(fs).dim == 8       # (k - 1) d
    assert TriangulationEmbedding(n_anchors=3, drop_components=2).fit(fs).dim == 10


def test_bad_settings_are_named(sparse_sets):
    fs = sparse_sets(1, n=40, d=8)
    with pytest.raises(ValueError,
                       match=r"needs more than 128 local features.*raise max_features"):
        TriangulationEmbedding(n_anchors=16).fit(fs)
    with pytest.raises(ValueError, match=r"n_anchors=41: exceeds the 40 local features"):
        TriangulationEmbedding(n_anchors=41).fit(fs)
    with pytest.raises(ValueError, match=r"drop_components=16: leaves nothing"):
        TriangulationEmbedding(n_anchors=2, drop_components=16).fit(sparse_sets(3, n=40, d=8))
    with pytest.raises(ValueError, match=r"damping=0: must be in \(0, 1\]"):
        TriangulationEmbedding(damping=0).fit(fs)


# ------------------------------------------------------------------ batched torch path
CPU = torch.device("cpu")


def test_torch_democratic_weights_of_a_padded_stack():
    rng = np.random.default_rng(0)
    sizes = (60, 35, 1)
    phis = [rng.standard_normal((n, 20)) * rng.random((n, 1)) * 3 for n in sizes]
    stack = np.zeros((3, 60, 20))
    for i, phi in enumerate(phis):
        stack[i, :len(phi)] = phi
    kernels = torch.from_numpy(stack @ stack.transpose(0, 2, 1))
    lam = democratic_weights(kernels, n_iter=10, damping=0.5).numpy()     # the torch branch
    for i, phi in enumerate(phis):
        np.testing.assert_allclose(lam[i, :len(phi)], democratic_weights(phi @ phi.T, 10, 0.5),
                                   rtol=1e-12)
        assert not lam[i, len(phi):].any()                                # padding: weight 0


@pytest.mark.parametrize("n_anchors,democratic", [(1, True), (3, True), (3, False)])
def test_batched_torch_path_equals_the_numpy_reference(dense_maps, sparse_sets, n_anchors,
                                                       democratic):
    for fit, test in ((dense_maps(4), dense_maps(3, seed=10)),
                      (sparse_sets(4), [sparse_sets(1, n=n, seed=n)[0] for n in (7, 40, 25)])):
        agg = TriangulationEmbedding(n_anchors=n_anchors, democratic=democratic).fit(fit)
        rng = np.random.default_rng(1)
        pos = lambda n: np.zeros((n, 2), np.float32)
        at_anchor = np.vstack([agg.anchors_, rng.random((2, 8), dtype=np.float32)])
        batch = test + [LocalFeatures(rng.random((1, 8), dtype=np.float32), pos(1)),  # one feature
                        LocalFeatures(np.zeros((4, 8), np.float32), pos(4)),          # all zero
                        LocalFeatures(at_anchor, pos(len(at_anchor)))]                # on anchors
        out = agg._encode_torch(batch, CPU)                            # torch, one call
        ref = agg.transform(batch)                                     # NumPy on the CPU
        gap = 1 - np.einsum("ij,ij->i", out, ref) / (np.linalg.norm(out, axis=1)
                                                    * np.linalg.norm(ref, axis=1))
        assert gap.max() <= 1e-5
        np.testing.assert_allclose(out, ref, atol=1e-5)
