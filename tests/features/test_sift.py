"""SIFT extractor: keypoint cap, RootSIFT, the position convention, empty images, the store."""
import numpy as np
import pytest
import skimage.data
from PIL import Image

from aggregators import SumPooling
from features import LocalFeatures
from features.sift import SiftExtractor, root_sift
from features.store import FeatureStore


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.fromarray(skimage.data.astronaut())  # 512 x 512 RGB


def test_real_photo_gives_capped_unit_rootsift_features_in_the_unit_square(photo):
    (f,) = SiftExtractor(max_keypoints=300)([photo])
    assert f.grid is None and f.dim == 128 and 100 < f.n <= 300
    assert f.positions.min() >= 0 and f.positions.max() <= 1
    np.testing.assert_allclose(np.linalg.norm(f.descriptors, axis=1), 1.0, atol=1e-5)
    assert (f.descriptors >= 0).all()


def test_cap_keeps_the_strongest_keypoints(photo):
    few, many = SiftExtractor(max_keypoints=40)([photo])[0], SiftExtractor(max_keypoints=400)([photo])[0]
    assert few.n == 40
    # sorted by response, strongest first: the 40 are the first 40 of the 400
    np.testing.assert_array_equal(few.positions, many.positions[:40])


def test_plain_sift_descriptors_are_opencv_scale():
    (f,) = SiftExtractor(max_keypoints=50, root_sift=False)([Image.fromarray(skimage.data.camera())])
    assert f.descriptors.max() > 50          # OpenCV SIFT entries are up to ~255, rows ~512 in L2
    assert np.linalg.norm(f.descriptors, axis=1).mean() > 100


def test_root_sift_is_sqrt_of_l1_normalised():
    d = np.array([[1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(root_sift(d), [[0.5, np.sqrt(0.75), 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize("resize,image_size", [("none", 384), ("max_side", 160)])
def test_position_of_a_single_blob_is_its_centre_in_normalised_coordinates(resize, image_size):
    w, h, x0, y0 = 320, 240, 200, 80  # blob centred on pixel (200, 80)
    yy, xx = np.mgrid[0:h, 0:w]
    img = 40 + 180 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 6.0 ** 2))
    (f,) = SiftExtractor(resize=resize, image_size=image_size)([Image.fromarray(img.astype(np.uint8))])
    assert f.n >= 1
    # pixel x spans [x, x + 1): its centre is at (x + 0.5) / w, whatever the resize
    best = f.positions[np.argmin(np.linalg.norm(f.positions - [(x0 + .5) / w, (y0 + .5) / h], axis=1))]
    np.testing.assert_allclose(best, [(x0 + 0.5) / w, (y0 + 0.5) / h], atol=0.8 / w)


def test_blank_image_gives_empty_features_that_aggregators_reject():
    (f,) = SiftExtractor()([Image.new("RGB", (200, 150), (128, 128, 128))])
    assert isinstance(f, LocalFeatures) and f.descriptors.shape == (0, 128) and f.positions.shape == (0, 2)
    with pytest.raises(ValueError, match="no local features"):
        SumPooling().fit([f])


def test_store_identity_covers_every_sift_setting_and_bad_settings_fail():
    from features.extractor import extractor_identity
    from features.store import store_key
    base = {"_target_": "features.sift.SiftExtractor", "max_keypoints": 1000, "root_sift": True,
            "contrast_threshold": 0.04, "resize": "max_side", "image_size": 384,
            "interpolation": "bilinear"}
    ident = extractor_identity(base)
    # the key of earlier versions: their stores stay valid
    assert ident == {"kind": "sift", "max_keypoints": 1000, "root_sift": True, "contrast_threshold": 0.04,
                     "resize": "max_side", "image_size": 384, "interpolation": "bilinear"}
    key = store_key(ident, ["a"], "float16")
    for change in ({"contrast_threshold": 0.01}, {"max_keypoints": 7}, {"root_sift": False}):
        assert store_key(extractor_identity(base | change), ["a"], "float16") != key
    with pytest.raises(ValueError, match="max_keypoints"):
        SiftExtractor(max_keypoints=0)
    with pytest.raises(ValueError, match="resize"):
        SiftExtractor(resize="crop")


def test_store_round_trip_keeps_sparse_features(tmp_path, photo):
    from chunk_sources import ListedImages
    from features.input_pipeline import stream_chunks
    ext = SiftExtractor(max_keypoints=100)
    images = [photo, Image.new("RGB", (64, 64), (0, 0, 0)), photo.rotate(90)]
    source = ListedImages(["a", "b", "c"], None)
    source.produce = lambda claims: stream_chunks(claims, images, ext, 2, num_workers=0)
    stored = FeatureStore(tmp_path, dtype="float32").get("toy", source, {"kind": "sift"},
                                                         progress=False)
    direct = ext(images)
    assert [f.n for f in stored] == [f.n for f in direct] and stored[1].n == 0
    for s, d in zip(stored, direct):
        assert s.grid is None
        np.testing.assert_array_equal(s.positions, d.positions)
        np.testing.assert_array_equal(s.descriptors, d.descriptors)
