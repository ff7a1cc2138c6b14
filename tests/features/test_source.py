"""Serving stored features of image lists: minimum size, crops, replaced files, no model build
when nothing is extracted."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.base import ImageRef
from benchmarks.errors import ImageLoadError, StoreError
from features.sift import SiftExtractor
from features.source import FeatureSource, ImageItem
from features.store import FeatureStore

SIFT_ARGS = {"max_keypoints": 50, "root_sift": True, "contrast_threshold": 0.01, "resize": "max_side",
             "image_size": 96, "interpolation": "bilinear"}
SIFT = {"_target_": "features.sift.SiftExtractor", **SIFT_ARGS}


def sift_source(store) -> FeatureSource:
    return FeatureSource(store, SIFT, lambda: SiftExtractor(**SIFT_ARGS), num_workers=0, progress=False)


def _photo(path, seed, size=(96, 72)):
    rng = np.random.default_rng(seed)
    a = np.kron(rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    Image.fromarray(a).save(path)
    return ImageRef(path.stem, path)


def test_tiny_images_stop_with_their_name(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    item = ImageItem(ImageRef("dot", tmp_path / "dot.png"), min_side=32)
    with pytest.raises(ImageLoadError, match=r"dot.png is 1 x 1 pixels, smaller than min_image_side=32"):
        item.load()
    with pytest.raises(ImageLoadError, match="dot.png"):
        item.size()


def test_crops_and_plain_jpegs(tmp_path):
    ref = _photo(tmp_path / "a.jpg", 0)
    assert ImageItem(ref).plain_jpeg == tmp_path / "a.jpg"
    cropped = ImageItem(ref, box=(10.2, 5.0, 50.5, 40.0))
    assert cropped.plain_jpeg is None and cropped.load().size == (41, 35)


def test_replaced_file_is_re_extracted_and_nothing_is_built_when_all_is_stored(tmp_path):
    refs = [_photo(tmp_path / f"im{i}.png", i) for i in range(5)]
    store = FeatureStore(tmp_path / "store", "float32", chunk_size=2)
    src = sift_source(store)
    first = src.features("toy", refs)
    assert src.extracted == 1 and first[4].n > 0
    again = sift_source(store)
    again.features("toy", refs)
    assert again.extracted == 0 and again._extractor is None       # no extractor was built
    _photo(tmp_path / "im4.png", 99)                                 # the user replaces a file
    fixed = again.features("toy", refs)
    assert again.extracted == 1
    assert not np.array_equal(np.asarray(fixed[4].descriptors), np.asarray(first[4].descriptors))
    np.testing.assert_array_equal(fixed[0].descriptors, first[0].descriptors)


def test_a_source_without_an_extractor_reads_but_names_what_it_cannot_extract(tmp_path):
    refs = [_photo(tmp_path / f"im{i}.png", i) for i in range(3)]
    store = FeatureStore(tmp_path / "store", "float32", chunk_size=2)
    stored = sift_source(store).features("toy", refs)
    reader = FeatureSource(store, SIFT, num_workers=0, progress=False)
    np.testing.assert_array_equal(reader.features("toy", refs)[2].descriptors, stored[2].descriptors)
    with pytest.raises(StoreError, match="cannot extract .*make_extractor"):
        reader.features("toy", refs + [_photo(tmp_path / "new.png", 7)])


def test_precision_and_decode_split_the_store_only_when_not_default():
    deep = {"_target_": "features.deep.DeepExtractor", "source": "timm", "name": "x"}
    base = FeatureSource(FeatureStore("/tmp/x"), deep).identity
    assert base == {"kind": "deep", "source": "timm", "name": "x"}
    assert FeatureSource(FeatureStore("/tmp/x"), deep, precision="bf16").identity == base | {"precision": "bf16"}
    assert FeatureSource(FeatureStore("/tmp/x"), deep, decode="torchvision").identity == base | {"decode": "torchvision"}


def test_tiny_query_boxes_are_named_and_rotated_jpegs_avoid_the_device_decoder(tmp_path):
    ref = _photo(tmp_path / "a.jpg", 0)
    with pytest.raises(ImageLoadError, match=r"query box .* is 5 x 5 pixels, smaller than min_image_side=32"):
        ImageItem(ref, box=(10, 10, 15, 15)).load()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(tmp_path / "a.jpg").save(tmp_path / "r.jpg", exif=exif)
    assert ImageItem(ImageRef("r", tmp_path / "r.jpg")).plain_jpeg is None   # Pillow applies EXIF
