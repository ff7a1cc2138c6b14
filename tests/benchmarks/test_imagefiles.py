"""Decoding image files right: EXIF orientation, 16-bit and float modes, bombs and bad files named."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.base import ImageRef
from benchmarks.errors import ImageLoadError
from benchmarks.imagefiles import decode_image, file_stamp, image_size, to_rgb


def _arrow(w=40, h=20):
    """An asymmetric RGB picture: a red block in the top-left corner."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:5, :10] = (255, 0, 0)
    return a


@pytest.mark.parametrize("orientation,expected", [
    (1, lambda a: a),
    (3, lambda a: a[::-1, ::-1]),                 # rotated 180
    (6, lambda a: np.rot90(a, k=-1)),             # stored rotated: display turns it 90 cw
    (8, lambda a: np.rot90(a, k=1)),
])
def test_exif_orientation_is_applied(tmp_path, orientation, expected):
    a = _arrow()
    path = tmp_path / "o.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(path, exif=exif)
    img = decode_image(path)
    np.testing.assert_array_equal(np.asarray(img), expected(a))
    assert image_size(path) == img.size                      # header size is the upright one


def test_16_bit_and_float_images_are_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)   # 0 .. 65520
    path = tmp_path / "g16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(decode_image(path))
    np.testing.assert_array_equal(rgb[..., 0], np.round(ramp / 257.0).astype(np.uint8))
    assert rgb.shape == (64, 64, 3)
    f = Image.fromarray(np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4))
    np.testing.assert_array_equal(np.asarray(to_rgb(f))[..., 1].ravel(),
                                  np.round(np.linspace(0, 255, 16)).astype(np.uint8))


def test_a_decompression_bomb_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)   # > 2x the limit: Pillow refuses
    with pytest.raises(ImageLoadError, match=r"big.png is larger than Pillow's decompression-bomb limit"):
        decode_image(path)
    with pytest.raises(ImageLoadError, match="big.png"):
        image_size(path)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(ImageLoadError, match=r"nope.jpg does not exist"):
        ImageRef("nope", tmp_path / "nope.jpg").load()
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageLoadError, match=r"cannot read image .*bad.jpg"):
        ImageRef("bad", tmp_path / "bad.jpg").load()
    with pytest.raises(ImageLoadError, match="nope.jpg"):
        file_stamp(tmp_path / "nope.jpg")


def test_the_stamp_changes_when_a_file_is_replaced(tmp_path):
    import os
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    ref = ImageRef("a", path)
    before = ref.stamp()
    Image.new("RGB", (9, 8), (1, 2, 3)).save(path)
    os.utime(path, ns=(1, 1))
    assert ref.stamp() != before and ImageRef("r", render=lambda: None).stamp() == ""
