"""Combining per-scale descriptors (cirtorch's mean of p-th powers, the raw sum, SuperGlobal's
Scale-GeM max), against hand-worked values."""
import numpy as np
import pytest

from aggregators import GeM
from aggregators.scales import ScaleCombination, combine_scales
from benchmarks.errors import ParameterError
from features import LocalFeatures

# two scales of one image, 2-D descriptors with norms 5 and 2
V1, V2 = np.array([[3.0, 4.0]]), np.array([[0.0, 2.0]])


def test_mean_is_the_mean_of_the_normalised_descriptors():
    # l2: (0.6, 0.8) and (0, 1) -> mean (0.3, 0.9)
    np.testing.assert_allclose(ScaleCombination("mean")([V1, V2]), [[0.3, 0.9]], rtol=1e-6)


def test_mean_with_p_is_the_p_th_root_of_the_mean_of_p_th_powers():
    # p = 3: ((0.6^3 + 0) / 2)^(1/3) = 0.108^(1/3), ((0.8^3 + 1) / 2)^(1/3) = 0.756^(1/3)
    got = ScaleCombination("mean", 3.0)([V1, V2])
    np.testing.assert_allclose(got, [[0.108 ** (1 / 3), 0.756 ** (1 / 3)]], rtol=1e-6)


def test_sum_adds_the_raw_descriptors_and_max_takes_the_normalised_maximum():
    np.testing.assert_allclose(ScaleCombination("sum")([V1, V2]), [[3.0, 6.0]])
    np.testing.assert_allclose(ScaleCombination("max")([V1, V2]), [[0.6, 1.0]], rtol=1e-6)


def test_one_scale_is_the_single_scale_descriptor_up_to_its_norm():
    v = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    for combine in ("mean", "max"):
        np.testing.assert_allclose(ScaleCombination(combine)([v]), unit, rtol=1e-6)
    np.testing.assert_array_equal(ScaleCombination("sum")([v]), v)


def test_bad_settings_and_signed_descriptors_with_a_power_are_named():
    with pytest.raises(ParameterError, match="combine='median'"):
        ScaleCombination("median")
    with pytest.raises(ParameterError, match="p=0"):
        ScaleCombination("mean", 0)
    with pytest.raises(ParameterError, match="multiscale.p=3.0: .*non-negative.*multiscale.p=1"):
        ScaleCombination("mean", 3.0)([np.array([[-1.0, 1.0]]), V1])
    assert ScaleCombination("mean", 1.0)([np.array([[-1.0, 1.0]]), V1]).shape == (1, 2)


def test_combine_scales_aggregates_each_scale_then_combines():
    rng = np.random.default_rng(1)

    def feats(n):
        return LocalFeatures(rng.random((n, 3)).astype(np.float32), rng.random((n, 2)).astype(np.float32))
    images = [(feats(5), feats(2)), (feats(4), feats(1))]      # two images at two scales
    gem = GeM(p=3.0)
    by_scale = [gem.transform([im[s] for im in images]) for s in range(2)]
    unit = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in by_scale]
    np.testing.assert_allclose(combine_scales(gem, images, ScaleCombination("max")),
                               np.maximum(*unit), rtol=1e-6)
