"""Multi-scale extraction: a scale is one resampling of the original image (the same features
as extracting a hand-resized image), each scale fills its own store entry (scale 1 the
single-scale one), and the images' features at every scale are served together."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.base import ImageRef
from benchmarks.errors import ParameterError
from features import LocalFeatures
from features.deep import DeepExtractor
from features.extractor import extractor_identity
from features.multiscale import MultiScaleFeatures, MultiScaleSource, check_scales
from features.source import FeatureSource
from features.store import FeatureStore

LITE0 = {"_target_": "features.deep.DeepExtractor", "resize": "max_side", "image_size": 96}


def _photo(w, h, seed=0):
    rng = np.random.default_rng(seed)
    a = np.kron(rng.integers(0, 255, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    return Image.fromarray(a)


@pytest.fixture(scope="module")
def lite0():
    return DeepExtractor(resize="max_side", image_size=96)


def test_a_scale_extracts_the_image_resized_by_it_once(lite0):
    image = _photo(128, 96)
    (half,) = lite0.at_scale(0.5)([image])                      # 96 x 72 -> 48 x 36
    (by_hand,) = DeepExtractor(resize="none")([image.resize((48, 36), Image.BILINEAR)])
    assert half.grid == by_hand.grid == (2, 2)
    np.testing.assert_array_equal(half.descriptors, by_hand.descriptors)
    assert lite0.at_scale(0.5).net is lite0.net and lite0.scale == 1.0   # the model is shared
    (full,) = lite0([image])
    np.testing.assert_array_equal(full.descriptors, lite0.at_scale(1.0)([image])[0].descriptors)
    with pytest.raises(ParameterError, match="scale=-1"):
        lite0.at_scale(-1)
    with pytest.raises(ParameterError, match="scale=0"):
        DeepExtractor(scale=0)


def test_scale_enters_the_identity_except_at_1():
    assert extractor_identity(LITE0) == extractor_identity({**LITE0, "scale": 1.0})
    assert extractor_identity({**LITE0, "scale": 0.5})["scale"] == 0.5


def test_scales_must_be_a_non_empty_list_of_distinct_positive_numbers():
    assert check_scales([1, 0.7071, 0.5]) == [1.0, 0.7071, 0.5]
    for bad in ([], [1, -0.5], [0], [1, 1], ["big"], [True], [float("inf")]):
        with pytest.raises(ParameterError, match="scales"):
            check_scales(bad)


def test_each_scale_fills_its_own_entry_and_scale_1_is_the_single_scale_one(tmp_path, lite0):
    refs = []
    for i in range(3):
        _photo(128, 96, seed=i).save(tmp_path / f"im{i}.png")
        refs.append(ImageRef(f"im{i}", tmp_path / f"im{i}.png"))
    store = FeatureStore(tmp_path / "store", "float32", chunk_size=2)
    single = FeatureSource(store, LITE0, lambda: lite0, num_workers=0, progress=False)
    one = single.features("toy", refs)
    built = []
    base = FeatureSource(store, LITE0, lambda: built.append(1) or lite0, num_workers=0, progress=False)
    multi = MultiScaleSource(base, [1.0, 0.5])
    feats = multi.features("toy", refs)
    assert len(built) == 1 and multi.sources[0].extracted == 0   # scale 1 read from the store
    assert len(list((tmp_path / "store" / "toy").iterdir())) == 2
    assert len(feats) == 3 and feats.scales == [1.0, 0.5]
    at1, at_half = feats[2]
    np.testing.assert_array_equal(at1.descriptors, one[2].descriptors)
    expected = lite0.at_scale(0.5)([Image.open(tmp_path / "im2.png").convert("RGB")])[0]
    np.testing.assert_array_equal(at_half.descriptors, expected.descriptors)
    assert feats.counts().tolist() == [at_half.n] * 3 and len(feats.flat()) == 6
    again = MultiScaleSource(FeatureSource(store, LITE0, None, num_workers=0, progress=False), [1.0, 0.5])
    assert again.features("toy", refs).content_key() == feats.content_key()   # all read back
    assert again.extracted == 0


def test_multiscale_features_are_aligned_by_image_and_empty_at_any_scale_is_empty():
    def lf(n):
        return LocalFeatures(np.ones((n, 2), np.float32), np.zeros((n, 2), np.float32))
    feats = MultiScaleFeatures([1, 0.5], [[lf(3), lf(2)], [lf(1), lf(0)]])
    assert feats.counts().tolist() == [1, 0]
    assert [f.n for f in feats[0]] == [3, 1]
    assert [f.n for f in feats.subset([1])[0]] == [2, 0]
    with pytest.raises(ValueError, match="different numbers of images"):
        MultiScaleFeatures([1, 0.5], [[lf(1)], []])


def test_a_transformer_scale_is_rounded_to_its_patch_size():
    from features.vit import TokenExtractor
    vit = TokenExtractor("vit_small_patch14_dinov2", image_size=56)
    image = _photo(64, 64)
    assert vit([image])[0].grid == (4, 4)                        # 56 px: 4 x 4 patches
    assert vit.at_scale(0.5)([image])[0].grid == (2, 2)          # 28 px
    assert vit.at_scale(1.4142)([image])[0].grid == (6, 6)       # 79 px -> 84 = 6 x 14
