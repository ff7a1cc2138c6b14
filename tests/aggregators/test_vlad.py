"""VLAD on a hand-worked 2-D example with two fixed centres, and its codebook."""
import numpy as np
import pytest

from aggregators import VLAD
from features import LocalFeatures

# centres c1 = (0, 0), c2 = (10, 0); (1, 0), (0, 2) -> c1, residual sum (1, 2);
# (8, 0), (9, 1) -> c2, residual sum (-2, 0) + (-1, 1) = (-3, 1). Raw VLAD (1, 2, -3, 1).
CENTRES = np.array([[0.0, 0.0], [10.0, 0.0]])
X = np.array([[1, 0], [0, 2], [8, 0], [9, 1]], dtype=np.float32)
R2, R3, R7 = np.sqrt(2), np.sqrt(3), np.sqrt(7)


def _vlad(**kw):
    f = LocalFeatures(X, np.zeros((4, 2), np.float32))
    agg = VLAD(n_clusters=2, **kw).fit([f])
    agg.cluster_centers_ = CENTRES
    return agg.transform(f)


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
    out = agg.transform(f)
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
    with pytest.raises(ValueError, match=r"n_clusters=64 exceeds the 40 local features.*"
                                         r"aggregator\.n_clusters.*aggregator\.max_features"):
        VLAD(n_clusters=64).fit(sparse_sets(1, n=40))
    with pytest.raises(ValueError, match=r"aggregator\.power_norm"):
        VLAD(n_clusters=2, power_norm="sqrt").fit(sparse_sets(1))
