"""The class-token aggregator, alone and joined with a pooling of the patch tokens, by hand."""
import numpy as np
import pytest

from aggregators import ClsToken
from features import LocalFeatures

PATCHES = np.array([[1.0, 0.0], [3.0, 0.0]], np.float32)      # mean (2, 0), GeM_p=2: (sqrt 5, 1e-6)


def _feats(cls=(3.0, 4.0)):
    token = None if cls is None else np.array(cls, np.float32)
    return LocalFeatures(PATCHES, np.zeros((2, 2), np.float32), None, token)


def test_the_class_token_alone_and_joined():
    np.testing.assert_array_equal(ClsToken().transform(_feats())[0], [3, 4])
    np.testing.assert_allclose(ClsToken("mean").transform(_feats())[0], [0.6, 0.8, 1, 0])
    joined = ClsToken("gem", p=2).transform(_feats())[0]
    np.testing.assert_allclose(joined[:2], [0.6, 0.8])
    np.testing.assert_allclose(joined[2:], [1, 1e-6 / np.sqrt(5)], rtol=1e-5)
    assert ClsToken("mean").output_dim(2) == 4 and ClsToken().output_dim(2) == 2


def test_features_without_a_class_token_are_refused_by_name():
    with pytest.raises(ValueError, match="needs a transformer's class token"):
        ClsToken().transform(_feats(None))
