"""VLAD on a hand-worked 2-D example with two fixed centres, and its codebook."""
import numpy as np
import pytest

from aggregators import VLAD
from features import LocalFeatures
from references import encode_one

# centres c1 = (0, 0), c2 = (10, 0); (1, 0), (0, 2) -> c1, residual sum (1, 2);
# (8, 0), (9, 1) -> c2, residual sum (-2, 0) + (-1, 1) = (-3, 1). Raw VLAD (1, 2, -3, 1).
CENTRES = np.array([[0.0, 0.0], [10.0, 0.0]])
X = np.array([[1, 0], [0, 2], [8, 0], [9, 1]], dtype=np.float32)
R2, R3, R7 = np.sqrt(2), np.sqrt(3), np.sqrt(7)


def _vlad(**kw):
    f = LocalFeatures(X, np.zeros((4, 2), np.float32))
    agg = VLAD(n_clusters=2, **kw).fit([f])
    agg.cluster_centers_ = CENTRES
    return agg.transform(f)[0]


@pytest.mark.parametrize("power_norm,intra_norm,expected", [
    ("none", False, np.array([1, 2, -3, 1]) / np.sqrt(15)),
    ("ssr", False, np.array([1, R2, -R3, 1]) / R7),                       # |.|^0.5, then L2
    ("none", True, np.r_[np.array([1, 2]) / np.sqrt(5), np.array([-3, 1]) / np.sqrt(10)] / R2),
    ("ssr", True, np.r_[np.array([1, R2]) / R3, np.array([-R3, 1]) / 2] / R2),  # ssr, intra, L2
])
def test_hand_worked_normalisations(power_norm, intra_norm, expected):
    np.testing.assert_allclose(_vlad(power_norm=power_norm, intra_norm=intra_norm), expected,
                               rtol=1e-6)


def test_empty_centre_block_stays_zero():
    f = LocalFeatures(X, np.zeros((4, 2), np.float32))
    agg = VLAD(n_clusters=3).fit([f])
    agg.cluster_centers_ = np.vstack([CENTRES, [[100.0, 100.0]]])
    out = agg.transform(f)[0]
    assert out.shape == (6,) and not out[4:].any() and np.isfinite(out).all()


def test_codebook_finds_two_clusters():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal((0, 0), 0.1, (50, 2)), rng.normal((10, 0), 0.1, (50, 2))])
    f = LocalFeatures(x.astype(np.float32), np.zeros((100, 2), np.float32))
    agg = VLAD(n_clusters=2).fit([f])
    centres = agg.cluster_centers_[np.argsort(agg.cluster_centers_[:, 0])]
    np.testing.assert_allclose(centres, [x[:50].mean(0), x[50:].mean(0)], atol=1e-4)
    assert agg.dim == 4


def test_too_many_clusters_names_the_settings(sparse_sets):
    with pytest.raises(ValueError, match=r"n_clusters=64: exceeds the 40 local features.*"
                                         r"lower n_clusters or raise max_features"):
        VLAD(n_clusters=64).fit(sparse_sets(1, n=40))
    with pytest.raises(ValueError, match=r"power_norm='sqrt': expected one of"):
        VLAD(n_clusters=2, power_norm="sqrt").fit(sparse_sets(1))


# ------------------------------------------------------------------ batched torch path
def _cosine_gap(a, b):
    """1 - cosine of matching rows (0 for two zero rows)."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return 1 - np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, 1e-30) - ((na == 0) & (nb == 0))


def _degenerate_batch(agg, d, seed=0):
    """Images of one feature, of all-zero features, with features exactly at a centre, mixed."""
    rng = np.random.default_rng(seed)
    at_centre = agg.cluster_centers_[:3].astype(np.float32)
    pos = lambda n: np.zeros((n, 2), np.float32)
    return [LocalFeatures(rng.random((1, d), dtype=np.float32), pos(1)),
            LocalFeatures(np.zeros((4, d), np.float32), pos(4)),
            LocalFeatures(at_centre, pos(3)),
            LocalFeatures(np.vstack([at_centre, rng.random((5, d), dtype=np.float32)]), pos(8))]


@pytest.mark.parametrize("power_norm,intra_norm", [("ssr", True), ("none", False)])
def test_batched_torch_path_equals_the_numpy_reference(dense_maps, sparse_sets, power_norm,
                                                       intra_norm):
    for fit, test in ((dense_maps(4), dense_maps(3, seed=10)),
                      (sparse_sets(4), [sparse_sets(1, n=n, seed=n)[0] for n in (7, 40, 25)])):
        agg = VLAD(n_clusters=5, power_norm=power_norm, intra_norm=intra_norm).fit(fit)
        batch = test + _degenerate_batch(agg, 8)
        out = agg.transform(batch)                                     # torch, one call
        ref = np.stack([encode_one(agg, f) for f in batch])                # NumPy, one by one
        assert _cosine_gap(out, ref).max() <= 1e-5
        np.testing.assert_allclose(out, ref, atol=1e-6)


def test_near_ties_are_assigned_as_in_float64():
    # features almost equidistant from two centres: float32 scores cannot tell which is nearer
    rng = np.random.default_rng(0)
    c = rng.normal(size=(2, 64))
    u = (c[1] - c[0]) / np.linalg.norm(c[1] - c[0])
    noise = rng.normal(size=(2000, 64))
    noise -= np.outer(noise @ u, u)
    x = (c.mean(0) + noise + rng.uniform(-1e-6, 1e-6, (2000, 1)) * u).astype(np.float32)
    truth = np.argmax(x.astype(np.float64) @ c.T - 0.5 * np.einsum("kd,kd->k", c, c), axis=1)
    plain = np.argmax(x @ c.T.astype(np.float32) - 0.5 * np.einsum("kd,kd->k", c, c).astype(
        np.float32), axis=1)
    assert (plain != truth).any()                           # the case is hard for float32
    agg = VLAD(n_clusters=2).fit([LocalFeatures(x[:10], np.zeros((10, 2), np.float32))])
    agg.cluster_centers_ = c
    import torch
    nearest = agg._nearest(torch.from_numpy(x), torch.device("cpu")).numpy()
    np.testing.assert_array_equal(nearest, truth)
