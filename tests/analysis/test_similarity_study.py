"""The similarity study over a dataset: image pairs, samples, the separation table."""
import numpy as np
import pytest
from PIL import Image

from analysis import similarity_study as study
from benchmarks.base import ImageRef, Query, RetrievalDataset
from features import LocalFeatures


def toy_dataset(groups):
    """Every image a query; positives = its group mates, junk = itself (the demo protocol)."""
    groups = np.asarray(groups)
    images = [ImageRef(f"im{i}", render=lambda: Image.new("RGB", (8, 8))) for i in range(len(groups))]
    queries = [Query(im, {"ok": np.flatnonzero((groups == groups[i]) & (np.arange(len(groups)) != i)),
                          "junk": np.array([i])}, db_index=i) for i, im in enumerate(images)]
    return RetrievalDataset("toy", images, queries, "holidays", meta={"groups": groups})


def test_matching_pairs_are_unordered_group_mates():
    ds = toy_dataset([0, 0, 1, 1, 1, 2])
    assert study.matching_pairs(ds).tolist() == [[0, 1], [2, 3], [2, 4], [3, 4]]


def test_unrelated_pairs_never_share_a_group():
    ds = toy_dataset([0, 0, 1, 1, 1, 2])
    p = study.unrelated_pairs(ds, 500, np.random.default_rng(0))
    g = ds.meta["groups"]
    assert p.shape == (500, 2) and (g[p[:, 0]] != g[p[:, 1]]).all()
    assert len({tuple(sorted(x)) for x in p}) == 15 - 4      # every unrelated pair appears
    with pytest.raises(ValueError, match="unrelated"):
        study.unrelated_pairs(toy_dataset([0, 0, 0]), 5, np.random.default_rng(0))


def test_known_homographies_compose_view_to_view():
    ds = toy_dataset([0, 0])
    ds.meta["homographies"] = np.stack([np.diag([2.0, 2.0, 1.0]), np.eye(3)])
    (H,) = study.known_homographies(ds, np.array([[0, 1]]))
    np.testing.assert_allclose(H, np.diag([0.5, 0.5, 1.0]))
    assert np.isnan(study.known_homographies(toy_dataset([0, 0]), np.array([[0, 1]]))).all()


def grid_image(descriptors):
    return LocalFeatures(np.asarray(descriptors, np.float32).reshape(4, -1),
                         np.zeros((4, 2), np.float32) + 0.5, (2, 2))


def test_local_samples_pair_corresponding_cells_and_unrelated_features():
    # images 0 and 1 show one scene (identity homography): cell k of 0 matches cell k of 1,
    # and their descriptors are equal (cosine 1); image 2 is unrelated and orthogonal to both
    e = np.eye(3)
    feats = [grid_image([e[0], e[1], e[0], e[1]]), grid_image([e[0], e[1], e[0], e[1]]),
             grid_image([e[2]] * 4)]
    pairs = study.ImagePairs(np.full((3, 2), 64), np.array([[0, 1]]), np.eye(3)[None],
                             np.array([[0, 2], [1, 2]]))
    s = study.local_samples(feats, pairs, 3.0, np.random.default_rng(0))
    match, non = s["cosine"]
    np.testing.assert_allclose(match, np.ones(4))              # 4 cells, each with itself
    np.testing.assert_allclose(non, np.zeros(4))               # as many non-matching pairs
    assert set(s) == {"cosine", "dot"}
    whitened = study.local_samples(feats, pairs, 3.0, np.random.default_rng(0), whiten=lambda x: -x)
    np.testing.assert_allclose(whitened["cosine_whitened"][0], np.ones(4))


def test_image_samples_compare_sum_pooled_descriptors_and_skip_empty_images():
    sparse = lambda d: LocalFeatures(np.asarray(d, np.float32), np.full((len(d), 2), 0.5))  # noqa: E731
    feats = [sparse([[1, 0], [1, 0]]), sparse([[2, 0]]), sparse([[0, 1]]),
             LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 2)))]
    X = study.sum_pooled(feats)
    np.testing.assert_allclose(X[:3], [[2, 0], [2, 0], [0, 1]])
    assert np.isnan(X[3]).all()
    pairs = study.ImagePairs(np.full((4, 2), 10), np.array([[0, 1], [2, 3]]), np.zeros((2, 3, 3)),
                             np.array([[0, 3], [0, 2], [1, 2]]))
    m, n = study.image_samples(X, pairs)["cosine"]
    np.testing.assert_allclose(m, [1.0])                       # (2, 3) dropped: 3 is empty
    np.testing.assert_allclose(n, [0.0])                       # as many unrelated as matching


def test_separation_table_has_one_row_per_sample():
    rng = np.random.default_rng(0)
    samples = {("local", "deep", "cosine"): (rng.normal(1, .1, 50), rng.normal(0, .1, 50)),
               ("image", "sift", "cosine"): (rng.normal(0, 1, 50), rng.normal(0, 1, 50))}
    t = study.separation_table(samples)
    assert t[["level", "features", "similarity"]].values.tolist() == [
        ["local", "deep", "cosine"], ["image", "sift", "cosine"]]
    assert t.loc[0, "auc"] == 1.0 and t.loc[1, "auc"] < 0.7
