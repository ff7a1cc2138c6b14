"""SuperGlobal's pooling against a second implementation written the way its authors' code
computes it (torch's LPPool2d on a reflection-padded map, scaled by the window size), and by hand."""
import numpy as np
import pytest
import torch

from aggregators import GeM, SuperGlobalPooling
from aggregators.superglobal import regional_gem
from features import LocalFeatures


def _torch_regional_gem(fmap, p, window):
    """(h, w, d) -> (h, w, d): 0.5 LPPool_p(pad(x / (window^2)^(1/p))) + 0.5 x, in float64."""
    x = torch.from_numpy(np.asarray(fmap, np.float64)).permute(2, 0, 1)[None]
    pool = torch.nn.LPPool2d(p, window, stride=1)
    pad = torch.nn.ReflectionPad2d((window - 1) // 2)
    y = 0.5 * pool(pad(x / (window ** 2) ** (1.0 / p))) + 0.5 * x
    return y[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("shape,p,window", [((7, 9, 3), 2.5, 5), ((4, 4, 2), 3.0, 3), ((5, 6, 1), 1.0, 5)])
def test_regional_gem_equals_lppool_on_a_reflection_padded_map(shape, p, window):
    fmap = np.random.default_rng(0).random(shape) + 0.01
    np.testing.assert_allclose(regional_gem(fmap, p, window), _torch_regional_gem(fmap, p, window),
                               rtol=1e-10)


def test_regional_gem_by_hand_on_a_constant_and_a_step():
    np.testing.assert_allclose(regional_gem(np.full((3, 3, 1), 2.0), 2.5, 3), 2.0)   # mean of 2s
    # three equal rows [0, 0, 3], padded by reflection to [0, 0, 0, 3, 0]; p = 1, 3 x 3 windows:
    # means 0, 1, 1 -> outputs 0.5 * x + 0.5 * mean = 0, 0.5, 2
    fmap = np.tile(np.array([0.0, 0.0, 3.0])[None, :, None], (3, 1, 1))
    np.testing.assert_allclose(regional_gem(fmap, 1.0, 3)[1, :, 0], [0.0, 0.5, 2.0])


def test_superglobal_pooling_is_relu_plus_then_regional_gem_then_gem_plus():
    rng = np.random.default_rng(1)
    fmap = rng.normal(size=(5, 4, 6)).astype(np.float32)         # (d, h, w), signed like tokens
    f = LocalFeatures.from_map(fmap)
    clamped = np.maximum(f.as_map(), 0.014)
    expected_map = _torch_regional_gem(clamped, 2.5, 5).astype(np.float32)
    cells = LocalFeatures(expected_map.reshape(24, 5), f.positions, f.grid)
    expected = GeM(4.6).transform(cells)[0]
    np.testing.assert_allclose(SuperGlobalPooling().transform(f)[0], expected, rtol=1e-5)
    plain = SuperGlobalPooling(regional=False).transform(f)[0]
    np.testing.assert_allclose(plain, GeM(4.6).transform(LocalFeatures(
        clamped.reshape(24, 5), f.positions, f.grid))[0], rtol=1e-6)


def test_bad_windows_are_named():
    f = LocalFeatures.from_map(np.ones((2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="window=5 needs a map larger than 2 cells"):
        SuperGlobalPooling().transform(f)
    with pytest.raises(Exception, match="window=4: must be odd"):
        SuperGlobalPooling(window=4).transform(f)
