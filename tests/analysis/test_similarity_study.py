"""The similarity study over a dataset: image pairs, samples, and the deepagg-similarity app."""
import numpy as np
import pytest
from hydra import compose, initialize_config_module
from PIL import Image

import analysis.similarity_app as app
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


@pytest.fixture
def sift_only_cfg(tmp_path):
    overrides = ["~backbone@extractors.deep", f"store.root={tmp_path / 'store'}",
                 "dataset.views_per_photo=3", "dataset.view_width=192", "dataset.view_height=144",
                 "whitening.fit_on=demo", "whitening.dim=32", "whitening.max_features=3000"]
    with initialize_config_module("conf", version_base="1.3"):
        return compose("similarity", overrides=overrides)


def test_app_reads_the_store_and_writes_table_figure_and_samples(sift_only_cfg, tmp_path, caplog):
    out = tmp_path / "out"
    out.mkdir()
    result = app.run(sift_only_cfg, out)
    t = result["table"]
    assert t[["level", "similarity"]].values.tolist() == [
        ["local", "cosine"], ["local", "dot"], ["local", "cosine_whitened"],
        ["image", "cosine"], ["image", "cosine_whitened"]]
    assert (t["features"] == "sift").all()
    assert len(result["pairs"].matching) == 10 * 3            # 10 photos x C(3, 2) view pairs
    local = t.iloc[0]
    assert local["n_matching"] == local["n_non_matching"] > 500 and local["auc"] > 0.8
    assert local["mean_matching"] > local["mean_non_matching"]
    assert "| local" in (out / "similarity.md").read_text()
    assert len(np.load(out / "samples.npz").files) == 2 * len(t)
    fig = result["figures"]["similarity"]
    assert len(fig.axes) == 2 and all(len(ax.patches) == 2 for ax in fig.axes)
    assert {ax.get_xlabel() for ax in fig.axes} == {"cosine similarity"}
    assert "Reconstruction of Babenko & Lempitsky (2015)" in fig._suptitle.get_text()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["matching pairs", "non-matching pairs"]
    assert (out / "similarity.png").stat().st_size > 0 and (out / "similarity_whitened.png").exists()
    # a second run extracts nothing: every feature comes from the store
    caplog.clear()
    with caplog.at_level("INFO"):
        app.run(sift_only_cfg, out)
    assert "extracting" not in caplog.text and "read from the feature store" in caplog.text


def test_app_can_estimate_homographies_by_ransac(sift_only_cfg, tmp_path):
    sift_only_cfg.pairs.homography = "ransac"
    sift_only_cfg.whitening.enabled = False
    out = tmp_path / "ransac"
    out.mkdir()
    result = app.run(sift_only_cfg, out)
    assert 0 < len(result["pairs"].matching) <= 30
    assert result["table"].iloc[0]["auc"] > 0.8


@pytest.mark.slow
def test_default_app_on_the_demo_separates_deep_features_better_at_image_level(tmp_path, default_run):
    # a copy of the default run's store, which holds the deep features of demo and demo_holdout
    import shutil
    shutil.copytree(default_run.store, tmp_path / "store")
    with initialize_config_module("conf", version_base="1.3"):
        cfg = compose("similarity", overrides=[f"store.root={tmp_path / 'store'}"])
    t = app.run(cfg, tmp_path)["table"].set_index(["level", "features", "similarity"])
    assert t.loc[("image", "deep", "cosine"), "auc"] > t.loc[("image", "sift", "cosine"), "auc"]
    assert t.loc[("local", "deep", "cosine"), "mean_ratio"] < t.loc[("local", "sift", "cosine"), "mean_ratio"]
