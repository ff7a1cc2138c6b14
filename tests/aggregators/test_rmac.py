"""R-MAC: the region grid (hand-derived) and the descriptor on a small map."""
import numpy as np
import pytest

from aggregators import RMAC
from aggregators.rmac import rmac_regions


def test_regions_of_the_paper_map():
    # 37 x 37: sides floor(2 * 37 / (l + 1)) = 37, 24, 18; 1, 2, 3 squares per side,
    # starts floor(i * (37 - side) / (count - 1)): (0), (0, 13), (0, 9, 19)
    expected = [(0, 0, 37)]
    expected += [(y, x, 24) for y in (0, 13) for x in (0, 13)]
    expected += [(y, x, 18) for y in (0, 9, 19) for x in (0, 9, 19)]
    assert rmac_regions(37, 37, levels=3) == expected


def test_regions_of_a_wide_map():
    # 30 x 40: side 30, level-1 gap b = 10 / (steps - 1) for steps 2..7 squares; overlap 1 - b / 30
    # is closest to 0.4 for 2 squares (0.67) -> one extra square along the width at every level
    expected = [(0, x, 30) for x in (0, 10)]                                          # 1 x 2
    expected += [(y, x, 20) for y in (0, 10) for x in (0, 10, 20)]                    # 2 x 3
    expected += [(y, x, 15) for y in (0, 7, 15) for x in (0, 8, 16, 25)]             # 3 x 4
    assert rmac_regions(30, 40, levels=3) == expected
    # a tall map gets the transposed grid
    assert sorted(rmac_regions(40, 30, levels=3)) == sorted((x, y, s) for y, x, s in expected)


def test_regions_of_a_very_wide_map():
    # 10 x 40: b = 30 / (steps - 1) = 30, 15, 10, 7.5, 6, 5 -> overlaps -2, -.5, 0, .25, .4, .5:
    # 6 squares of side 10 at level 1, starts floor(i * 30 / 5)
    assert rmac_regions(10, 40, levels=1) == [(0, x, 10) for x in (0, 6, 12, 18, 24, 30)]


@pytest.mark.parametrize("h,w", [(1, 1), (2, 7), (13, 13), (24, 37), (50, 9)])
def test_regions_lie_inside_the_map(h, w):
    regions = rmac_regions(h, w, levels=3)
    assert regions
    for y, x, s in regions:
        assert s >= 1 and 0 <= y and y + s <= h and 0 <= x and x + s <= w


def test_descriptor_on_a_4x4_map(dense_maps):
    # levels = 2 on 4 x 4: the whole map, then the four 2 x 2 quadrants
    f = dense_maps(1, h=4, w=4, d=6)[0]
    fmap = f.as_map()
    blocks = [fmap] + [fmap[y:y + 2, x:x + 2] for y in (0, 2) for x in (0, 2)]
    pooled = [b.reshape(-1, 6).max(axis=0) for b in blocks]
    total = sum(p / np.linalg.norm(p) for p in pooled)
    out = RMAC(levels=2).fit([f]).transform(f)[0]
    np.testing.assert_allclose(out, total / np.linalg.norm(total), rtol=1e-5)


def test_region_whitening(dense_maps):
    maps = dense_maps(6, h=9, w=9, d=8)
    agg = RMAC(region_whitening=True, region_whitening_dim=5).fit(maps)
    out = agg.transform(maps)
    assert out.shape == (6, 5) == (6, agg.dim)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match=r"aggregator\.region_whitening_dim"):
        RMAC(region_whitening=True).fit(dense_maps(1, h=9, w=9, d=32))  # 14 regions, 32 dims
