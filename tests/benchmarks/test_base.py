"""ImageRef: the upright size that every size check and the similarity study use."""
import numpy as np
import pytest
from PIL import Image

from benchmarks.base import ImageRef
from benchmarks.errors import DatasetError
from benchmarks.imagefiles import check_box


def _exif_rotated(path, stored=(200, 100), orientation=6):
    """A JPEG stored ``stored`` (w, h) whose EXIF says: turn it 90 degrees to view it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.zeros(stored[::-1] + (3,), np.uint8)).save(path, exif=exif)
    return path


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_size_is_the_size_load_gives_with_exif_orientation_and_rotation(tmp_path, rotate):
    ref = ImageRef("r", _exif_rotated(tmp_path / "r.jpg"), rotate=rotate)
    upright = (100, 200) if rotate % 180 == 0 else (200, 100)   # EXIF turns 200 x 100 upright
    assert ref.size() == upright == ref.load().size
    plain = ImageRef("p", _exif_rotated(tmp_path / "p.jpg", orientation=1), rotate=rotate)
    assert plain.size() == ((200, 100) if rotate % 180 == 0 else (100, 200)) == plain.load().size


def test_rendered_images_report_their_rendered_size():
    ref = ImageRef("x", render=lambda: Image.new("RGB", (30, 20)), rotate=90)
    assert ref.size() == (20, 30) == ref.load().size


def test_query_boxes_are_checked_against_the_upright_image(tmp_path):
    ref = ImageRef("r", _exif_rotated(tmp_path / "r.jpg"))
    assert check_box("toy", "r", (0, 0, 100, 200), ref.size(), ref.path) == (0.0, 0.0, 100.0, 200.0)
    with pytest.raises(DatasetError, match=r"outside its image .*r.jpg \(100 x 200 pixels\)"):
        check_box("toy", "r", (0, 0, 200, 100), ref.size(), ref.path)
