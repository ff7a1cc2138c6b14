"""The deepagg-similarity app: reads the store, pairs images, writes table, figures and samples."""
import numpy as np
import pytest
from hydra import compose, initialize_config_module

import experiments.similarity_app as app


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


def test_the_study_maps_positions_with_the_upright_size_of_exif_rotated_photos(tmp_path):
    """A phone photo stored 200 x 100 with EXIF orientation 6 is seen 100 x 200 by the extractors;
    the study's homographies must use that size (it used the stored one)."""
    from PIL import Image

    from benchmarks.base import ImageRef, RetrievalDataset
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (200, 100)).save(tmp_path / "phone.jpg", exif=exif)
    Image.new("RGB", (64, 48)).save(tmp_path / "plain.jpg")
    refs = [ImageRef("phone", tmp_path / "phone.jpg"), ImageRef("plain", tmp_path / "plain.jpg", rotate=90)]
    ds = RetrievalDataset("toy", refs, [], "holidays")
    assert app.image_sizes(ds).tolist() == [[100, 200], [48, 64]]
    assert app.image_sizes(ds).tolist() == [list(r.load().size) for r in refs]
