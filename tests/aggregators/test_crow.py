"""CroW weights and descriptor against their closed forms on a 2 x 2 map."""
import numpy as np
import pytest

from aggregators import CroW
from aggregators.crow import crow_channel_weights, crow_spatial_weights
from features import LocalFeatures

# 2 x 2 map, 3 channels; rows are the locations (row-major)
X = np.array([[1, 0, 0],
              [0, 2, 0],
              [1, 1, 0],
              [2, 0, 0]], dtype=np.float32)


def _map():
    return LocalFeatures.from_map(X.T.reshape(3, 2, 2))


def test_spatial_weights():
    # S' = (1, 2, 2, 2), ||S'||_2 = sqrt(13); a = b = 2: S = sqrt(S' / sqrt(13))
    np.testing.assert_allclose(crow_spatial_weights(X),
                               np.sqrt(np.array([1, 2, 2, 2]) / np.sqrt(13)))
    # a = b = 1: S = S' / sum(S')
    np.testing.assert_allclose(crow_spatial_weights(X, a=1, b=1), np.array([1, 2, 2, 2]) / 7)
    assert not crow_spatial_weights(np.zeros((4, 3))).any()


def test_channel_weights():
    # Q = (3/4, 2/4, 0), sum Q = 5/4; the dead channel gets 0
    np.testing.assert_allclose(crow_channel_weights(X), [np.log(5 / 3), np.log(5 / 2), 0])


def test_descriptor():
    s0, s = (1 / np.sqrt(13)) ** 0.5, (2 / np.sqrt(13)) ** 0.5
    expected = [np.log(5 / 3) * (s0 + s + 2 * s), np.log(5 / 2) * (2 * s + s), 0]
    np.testing.assert_allclose(CroW().fit([_map()]).transform(_map())[0], expected, rtol=1e-6)


def test_all_zero_map_gives_zeros_not_nan():
    f = LocalFeatures.from_map(np.zeros((3, 2, 2), np.float32))
    np.testing.assert_array_equal(CroW().fit([f]).transform(f), 0)


def test_rejects_negative_features_and_bad_exponents():
    f = LocalFeatures.from_map(-X.T.reshape(3, 2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        CroW().fit([f]).transform(f)
    with pytest.raises(ValueError, match=r"b=0: .*CroW"):
        CroW(b=0).fit([_map()])
