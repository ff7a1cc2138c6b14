"""Array-level pieces of the similarity analysis, against hand-derived expectations."""
import numpy as np
import pytest

from analysis.similarity import (apply_homography, estimate_homography, gather_pairs,
                                 grid_correspondences, keypoint_correspondences, map_positions,
                                 overlap_coefficient, pair_similarity, random_feature_pairs,
                                 ratio_matches, separation, to_pixels, view_to_view)
from features import LocalFeatures


def translation(dx, dy):
    return np.array([[1.0, 0, dx], [0, 1, dy], [0, 0, 1]])


def test_translation_by_one_cell_pairs_each_cell_with_its_right_neighbour():
    # 3 x 4 grid on 120 x 90 pixels: cells of 30 x 30; shift right by exactly one cell
    pairs = grid_correspondences((3, 4), (3, 4), translation(30, 0), (120, 90), (120, 90))
    expected = [(r * 4 + c, r * 4 + c + 1) for r in range(3) for c in range(3)]  # column 3 leaves
    assert sorted(map(tuple, pairs)) == expected


def test_2x_scale_pairs_cells_by_hand():
    # 4 x 4 grid on 64 x 64 (cells of 16). Scaling continuous coordinates by 2 is, in OpenCV
    # pixel coordinates (centres at integers), p -> 2 p + 0.5. Cell centres 8, 24 -> 16, 48:
    # cells 1 and 3; centres 40, 56 -> 80, 112: outside.
    H = np.array([[2.0, 0, 0.5], [0, 2, 0.5], [0, 0, 1]])
    pairs = grid_correspondences((4, 4), (4, 4), H, (64, 64), (64, 64))
    assert sorted(map(tuple, pairs)) == [(0, 5), (1, 7), (4, 13), (5, 15)]


def test_grids_of_different_sizes_and_a_point_at_infinity():
    # a 2 x 2 grid mapped by the identity into a 4 x 4 grid of the same image size:
    # centres (0.25, 0.25) ... land in cells (1, 1), (1, 3), (3, 1), (3, 3)
    pairs = grid_correspondences((2, 2), (4, 4), np.eye(3), (100, 100), (100, 100))
    assert sorted(map(tuple, pairs)) == [(0, 5), (1, 7), (2, 13), (3, 15)]
    H = np.array([[1.0, 0, 0], [0, 1, 0], [-1, 0, 1]])  # w <= 0 for x >= 1: undefined there
    assert np.isnan(apply_homography(H, np.array([[5.0, 5.0]]))).all()


def test_view_to_view_composes_through_the_source():
    H_a, H_b = translation(10, 0), np.diag([2.0, 2.0, 1.0])
    # view-a pixel (15, 5) is source (5, 5), which is view-b pixel (10, 10)
    np.testing.assert_allclose(apply_homography(view_to_view(H_a, H_b), np.array([[15.0, 5.0]])),
                               [[10.0, 10.0]])


def test_pixel_conversion_is_inverse_of_position_convention():
    pos = np.array([[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(to_pixels(pos, (100, 50)), [[49.5, 24.5], [-0.5, 49.5]])
    np.testing.assert_allclose(map_positions(pos, np.eye(3), (100, 50), (100, 50)), pos)


def test_keypoints_correspond_within_tolerance_one_to_one():
    size = (100, 100)
    a_px = np.array([[10.0, 10], [50, 50], [80, 20], [30, 70]])
    b_px = np.array([[15.5, 10], [55, 51], [85, 26], [90, 90]])  # + (5, 0); 3rd is 6 px off
    pos = lambda px: (px + 0.5) / 100  # noqa: E731
    pairs = keypoint_correspondences(pos(a_px), pos(b_px), translation(5, 0), size, size, tolerance=2)
    assert sorted(map(tuple, pairs)) == [(0, 0), (1, 1)]


def test_colocated_keypoints_are_ambiguous():
    size = (100, 100)
    a_px = np.array([[10.0, 10], [10, 10], [50, 50]])    # two keypoints at one location
    b_px = np.array([[10.0, 10], [50, 50]])
    pos = lambda px: (px + 0.5) / 100  # noqa: E731
    strict = keypoint_correspondences(pos(a_px), pos(b_px), np.eye(3), size, size, 2)
    assert sorted(map(tuple, strict)) == [(2, 1)]
    loose = keypoint_correspondences(pos(a_px), pos(b_px), np.eye(3), size, size, 2, unambiguous=False)
    assert len(loose) == 2 and (2, 1) in map(tuple, loose)
    assert keypoint_correspondences(np.zeros((0, 2)), pos(b_px), np.eye(3), size, size, 2).shape == (0, 2)


def test_ransac_homography_of_two_demo_views_is_close_to_the_truth():
    from benchmarks.demo import demo_dataset
    from features.sift import SiftExtractor
    ds = demo_dataset(views_per_photo=2)
    (w, h), H = ds.meta["view_size"], ds.meta["homographies"]
    fa, fb = SiftExtractor()([ds.images[0].load(), ds.images[1].load()])  # astronaut, two views
    est, inliers = estimate_homography(fa, fb, (w, h), (w, h))
    assert est is not None and inliers >= 15
    truth = view_to_view(H[0], H[1])
    # compare where both views see the photo: the keypoints of a that land inside b
    pa = to_pixels(fa.positions, (w, h))
    mapped = apply_homography(truth, pa)
    inside = ((mapped >= 0) & (mapped < [w, h])).all(axis=1)
    err = np.linalg.norm(apply_homography(est, pa[inside]) - mapped[inside], axis=1)
    assert inside.sum() > 20 and np.median(err) < 1.5 and np.percentile(err, 90) < 4


def test_ransac_rejects_unrelated_images():
    rng = np.random.default_rng(0)
    a = LocalFeatures(rng.random((200, 128)).astype(np.float32), rng.random((200, 2)).astype(np.float32))
    b = LocalFeatures(rng.random((200, 128)).astype(np.float32), rng.random((200, 2)).astype(np.float32))
    assert estimate_homography(a, b, (100, 100), (100, 100))[0] is None


def test_random_feature_pairs_stay_in_range_and_skip_empty_images():
    counts = np.array([3, 0, 5, 2])
    image_pairs = np.array([[0, 1], [0, 2], [2, 3]])          # (0, 1): image 1 has no features
    p = random_feature_pairs(counts, image_pairs, 2000, np.random.default_rng(1))
    assert p.shape == (2000, 4)
    assert {tuple(x) for x in p[:, [0, 2]]} == {(0, 2), (2, 3)}
    assert (p[:, 1] < counts[p[:, 0]]).all() and (p[:, 3] < counts[p[:, 2]]).all()
    assert len({tuple(x) for x in p}) == 3 * 5 + 5 * 2       # every feature pair is reachable
    again = random_feature_pairs(counts, image_pairs, 2000, np.random.default_rng(1))
    np.testing.assert_array_equal(p, again)


def test_gather_pairs_and_similarities():
    f0 = LocalFeatures(np.array([[1.0, 0], [0, 2]], np.float16), np.zeros((2, 2)))
    f1 = LocalFeatures(np.array([[3.0, 4]], np.float32), np.zeros((1, 2)))
    A, B = gather_pairs([f0, f1], np.array([[0, 0, 1, 0], [0, 1, 1, 0]]))
    np.testing.assert_array_equal(A, [[1, 0], [0, 2]])
    np.testing.assert_array_equal(B, [[3, 4], [3, 4]])
    np.testing.assert_allclose(pair_similarity(A, B, "cosine"), [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(pair_similarity(A, B, "dot"), [3.0, 8.0])
    with pytest.raises(ValueError, match="similarity kind"):
        pair_similarity(A, B, "euclid")


def test_identical_distributions_are_inseparable_and_disjoint_ones_perfectly_separated():
    rng = np.random.default_rng(0)
    same = separation(rng.normal(0, 1, 20000), rng.normal(0, 1, 20000))
    assert abs(same["auc"] - 0.5) < 0.02 and same["overlap"] > 0.95
    apart = separation(rng.uniform(0.6, 1.0, 500), rng.uniform(-1.0, 0.5, 700))
    assert apart["auc"] == 1.0 and apart["overlap"] == 0.0
    assert apart["n_matching"] == 500 and apart["n_non_matching"] == 700
    assert 0.75 < apart["mean_matching"] < 0.85 and apart["std_matching"] < 0.2


def test_overlap_of_half_shifted_uniforms_is_one_half():
    x = np.linspace(0, 1, 100001)
    assert overlap_coefficient(x, x + 0.5, bins=150) == pytest.approx(0.5, abs=0.01)


def test_ratio_matches_agree_with_a_float64_brute_force_ratio_test():
    rng = np.random.default_rng(1)
    b = rng.random((300, 128)).astype(np.float32)
    a = np.concatenate([b[:120] + rng.normal(0, 0.02, (120, 128)),     # near copies: they pass
                        rng.random((80, 128))]).astype(np.float32)      # unrelated: mostly fail
    d = np.sqrt(((a[:, None, :].astype(np.float64) - b[None].astype(np.float64)) ** 2).sum(-1))
    order = np.sort(d, axis=1)
    keep = np.flatnonzero(order[:, 0] < 0.8 * order[:, 1])
    expected = np.column_stack([keep, d[keep].argmin(1)])
    got = ratio_matches(a, b, 0.8)
    np.testing.assert_array_equal(got[np.argsort(got[:, 0])], expected)
    assert {tuple(m) for m in got} >= {(i, i) for i in range(120)}
    assert ratio_matches(a, b[:1]).shape == (0, 2) and ratio_matches(a[:0], b).shape == (0, 2)


def similarity_samples(types=("deep", "sift"), seed=0):
    rng = np.random.default_rng(seed)
    return {(level, t, "cosine"): (rng.normal(0.6, 0.1, 200), rng.normal(0.2, 0.1, 200))
            for level in ("local", "image") for t in types}


@pytest.mark.parametrize("types", [("deep", "sift"), ("deep",)])
def test_similarity_figure_keeps_a_long_note_inside_the_figure(types, tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from analysis.similarity_figure import similarity_figure
    note = ("custom_dataset_with_a_long_name: 212 matching image pairs, homographies from RANSAC on "
            "sift; non-matching pairs: random features of unrelated images (seed 0); PCA-whitening "
            "(128 dims) fitted on demo_holdout; ") * 3
    rows = [("local", "cosine"), ("image", "cosine")]
    short = similarity_figure(similarity_samples(types), rows)
    fig = similarity_figure(similarity_samples(types), rows, tmp_path / "f", note=note)
    assert (tmp_path / "f.png").stat().st_size > 0
    canvas = FigureCanvasAgg(fig)                                      # pyplot closed the figure
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    (text,) = [t for t in fig.texts if "".join(t.get_text().split()) == "".join(note.split())]
    assert text.get_text().count("\n") >= 2                           # wrapped
    for artist in [text, fig._suptitle, fig.legends[0]]:               # nothing cut at an edge
        e = artist.get_window_extent(renderer)
        assert box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1, artist
    note_top = text.get_window_extent(renderer).y1
    legend = fig.legends[0].get_window_extent(renderer)
    assert legend.y0 >= note_top                                       # legend above the note
    for ax in fig.axes:                                                # panels (labels too) above both
        assert ax.get_tightbbox(renderer).y0 >= legend.y1
    # the panels keep their size: the figure grows by the note
    sizes = [tuple(np.round(ax.get_position().transformed(f.transFigure).size, 0))
             for f in (short, fig) for ax in f.axes[:1]]
    assert abs(sizes[0][0] - sizes[1][0]) <= 2 and abs(sizes[0][1] - sizes[1][1]) <= 0.1 * sizes[0][1]
