"""Sum / SPoC / max pooling and post-processing against closed forms."""
import numpy as np
import pytest

from aggregators import MaxPooling, SumPooling
from aggregators.pooling import center_prior_weights
from features import LocalFeatures


def _map(h, w, d, seed=0):
    return LocalFeatures.from_map(np.random.default_rng(seed).random((d, h, w)).astype(np.float32))


def test_sum_pooling_is_the_channel_sum():
    f = _map(3, 4, 5)
    agg = SumPooling().fit([f])
    np.testing.assert_allclose(agg.transform(f)[0], f.descriptors.sum(0), rtol=1e-6)
    assert agg.dim == 5


def test_max_pooling_is_the_channel_max():
    f = _map(3, 4, 5)
    np.testing.assert_array_equal(MaxPooling().fit([f]).transform(f)[0], f.descriptors.max(0))


def test_center_prior_closed_form():
    # 3 x 3 grid: sigma = 3/6 = 0.5; centre cell weight 1, edge cells exp(-1/(2*0.25)) = e^-2,
    # corner cells e^-4 (cell centres at 0.5, 1.5, 2.5; map centre at 1.5)
    f = _map(3, 3, 2)
    w = center_prior_weights(f).reshape(3, 3)
    e2, e4 = np.exp(-2), np.exp(-4)
    np.testing.assert_allclose(w, [[e4, e2, e4], [e2, 1, e2], [e4, e2, e4]], rtol=1e-6)
    agg = SumPooling(center_prior=True).fit([f])
    np.testing.assert_allclose(agg.transform(f)[0], w.ravel() @ f.descriptors, rtol=1e-5)


def test_center_prior_sigma_uses_the_shorter_side():
    f = _map(3, 9, 1)  # sigma = 3/6; the centre is (4.5, 1.5)
    w = center_prior_weights(f).reshape(3, 9)
    assert w[1, 4] == pytest.approx(1.0)
    assert w[1, 5] == pytest.approx(np.exp(-1 / (2 * 0.25)))


def test_batch_equals_single_and_rejects_empty_and_nan():
    fs = [_map(2, 2, 3, s) for s in range(3)]
    agg = SumPooling().fit(fs)
    np.testing.assert_allclose(agg.transform(fs), np.concatenate([agg.transform(f) for f in fs]))
    empty = LocalFeatures(np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32))
    with pytest.raises(ValueError, match="no local features"):
        agg.transform(empty)
    bad = LocalFeatures(np.full((1, 3), np.nan, np.float32), np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        agg.transform(bad)
