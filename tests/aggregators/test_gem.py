"""GeM pooling: closed forms and its two limits (average and max pooling)."""
import numpy as np
import pytest

from aggregators import GeM, MaxPooling
from features import LocalFeatures


def _features(x):
    x = np.asarray(x, dtype=np.float32)
    return LocalFeatures(x, np.zeros((len(x), 2), np.float32))


def test_closed_form():
    f = _features([[1, 0], [2, 0], [3, 0]])
    out = GeM(p=2).fit([f]).transform(f)[0]
    np.testing.assert_allclose(out, [np.sqrt(14 / 3), 1e-6], rtol=1e-6)  # zeros clamp to eps


def test_p1_is_average_pooling(dense_maps):
    f = dense_maps(1, d=16)[0]
    x = np.maximum(f.descriptors, 1e-6)
    np.testing.assert_allclose(GeM(p=1).fit([f]).transform(f)[0], x.mean(axis=0), rtol=1e-5)


def test_large_p_approaches_max_pooling_and_inf_is_max_pooling(dense_maps):
    f = dense_maps(1, d=16)[0]
    top = f.descriptors.max(axis=0)
    gaps = [np.abs(GeM(p=p).fit([f]).transform(f)[0] - top).max() / top.max()
            for p in (1, 3, 10, 100, 1000)]
    assert np.all(np.diff(gaps) < 0) and gaps[-1] < 1e-2
    np.testing.assert_allclose(GeM(p=np.inf).fit([f]).transform(f),
                               MaxPooling().fit([f]).transform(f), atol=1e-6)


def test_rejects_non_positive_p(dense_maps):
    with pytest.raises(ValueError, match=r"p=0: must be a number > 0.*GeM"):
        GeM(p=0).fit(dense_maps(1))
