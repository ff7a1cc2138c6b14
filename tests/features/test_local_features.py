import numpy as np
import pytest

from features import LocalFeatures


def test_from_map_is_row_major_with_cell_centres():
    fmap = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)  # d=2, h=2, w=3
    f = LocalFeatures.from_map(fmap)
    assert f.grid == (2, 3)
    np.testing.assert_array_equal(f.descriptors[4], fmap[:, 1, 1])   # row 1, col 1 -> 1*3+1
    np.testing.assert_allclose(f.positions[4], [1.5 / 3, 1.5 / 2])
    np.testing.assert_array_equal(f.as_map()[1, 2], fmap[:, 1, 2])


def test_shape_checks():
    with pytest.raises(ValueError, match="grid"):
        LocalFeatures(np.zeros((5, 2)), np.zeros((5, 2)), (2, 2))  # 2 x 2 grid holds 4 cells
    with pytest.raises(ValueError, match="positions"):
        LocalFeatures(np.zeros((4, 2)), np.zeros((3, 2)))
