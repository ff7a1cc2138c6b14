"""The resize policies shared by the deep and SIFT extractors."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.errors import ParameterError
from features.deep import ResizeImage
from features.resize import check_resize_settings, resize_image, resized_size
from features.sift import SiftFeatures


def test_resize_policies():
    assert resized_size(640, 480, "square", 586) == (586, 586)
    assert resized_size(640, 480, "max_side", 1024) == (1024, 768)
    assert resized_size(480, 640, "max_side", 384) == (288, 384)
    assert resized_size(33, 17, "none", 1) == (33, 17)
    with pytest.raises(ValueError, match="resize='fit'"):
        resized_size(1, 1, "fit", 3)


def test_bad_settings_name_the_key_and_the_owner():
    with pytest.raises(ParameterError, match=r"interpolation='cubic'.*\(SiftExtractor\)"):
        check_resize_settings("SiftExtractor", "max_side", 96, "cubic")
    with pytest.raises(ParameterError, match="image_size=0"):
        check_resize_settings("DeepExtractor", "max_side", 0, "bilinear")


def test_deep_and_sift_see_the_same_resized_pixels():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8))
    resized = resize_image(image, "max_side", 45, "bicubic")
    assert resized.size == (45, 30)
    assert resize_image(image, "none", 1, "bilinear") is image
    np.testing.assert_array_equal(ResizeImage("max_side", 45, "bicubic")(image), np.asarray(resized))
    sift = SiftFeatures(10, True, "max_side", 45, "bicubic", 0.01)
    np.testing.assert_array_equal(sift.gray(image), np.asarray(resized.convert("L")))


def test_a_scale_multiplies_the_policys_sides_before_the_patch_rounding():
    assert resized_size(640, 480, "max_side", 384, scale=0.5) == (192, 144)
    assert resized_size(640, 480, "max_side", 384, scale=0.7071) == (271, 203)   # 271.5, 203.6: down
    assert resized_size(33, 17, "none", 1, scale=2.0) == (66, 34)
    assert resized_size(640, 480, "square", 224, multiple=14, scale=1.4142) == (322, 322)  # 316 -> 23 x 14
    assert resized_size(640, 480, "max_side", 384, scale=1.0) == resized_size(640, 480, "max_side", 384)
