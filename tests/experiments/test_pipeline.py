"""The run's stages alone, on tiny arrays: encoding policies, the query matrix, fit sets read,
the post-processing chain, the fit cache."""
import numpy as np
import pytest
from omegaconf import OmegaConf

from aggregators import SumPooling
from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.errors import ConfigError
from experiments import fitted, stages
from experiments.pipeline import check_available, fit_sets_read, postprocess_chain
from experiments.validate import check_run
from features import LocalFeatures


def _feats(*counts):
    return [LocalFeatures(np.full((n, 2), i + 1, np.float32), np.zeros((n, 2), np.float32))
            for i, n in enumerate(counts)]


def test_images_without_features_stop_the_run_by_name():
    with pytest.raises(ConfigError, match=r"1 image\(s\).*img_b.*empty_images=zero"):
        stages.encode(SumPooling(), _feats(2, 0, 3), ["img_a", "img_b", "img_c"])


def test_zero_policy_gives_a_zero_row_and_a_mask_and_then_runs_per_batch():
    X, empty = stages.encode(SumPooling(), _feats(2, 0, 3), empty_images="zero", batch=2)
    np.testing.assert_array_equal(empty, [False, True, False])
    np.testing.assert_allclose(X, [[2, 2], [0, 0], [9, 9]])
    seen = []
    Y, _ = stages.encode(SumPooling(), _feats(2, 0, 3), empty_images="zero", batch=2,
                         then=lambda rows: seen.append(len(rows)) or rows[:, :1] * 10)
    assert seen == [1, 1] and Y.shape == (3, 1)                 # only the output width is kept
    np.testing.assert_allclose(Y[:, 0], [20, 0, 90])


def test_fitting_sets_skip_empty_images():
    assert [f.n for f in stages.non_empty(_feats(2, 0, 3), "toy")] == [2, 3]


def test_query_matrix_takes_database_rows_or_own_rows():
    imgs = [ImageRef(f"i{k}") for k in range(3)]
    qs = [Query(imgs[2], {}, db_index=2), Query(ImageRef("q"), {}, db_index=None),
          Query(imgs[0], {}, db_index=0, box=(0, 0, 1, 1))]
    ds = RetrievalDataset("t", imgs, qs, crop_queries=True)
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    extra = np.array([[7, 7], [9, 9]], np.float32)
    Q, empty = stages.query_matrix(ds, X, np.array([False, False, True]), extra,
                                   np.array([False, True]), np.array([1, 2]))
    np.testing.assert_array_equal(Q, [[4, 5], [7, 7], [9, 9]])
    np.testing.assert_array_equal(empty, [True, False, True])    # query 0 is image 2: empty


def test_postprocess_chain_follows_the_config():
    cfg = OmegaConf.create({"alpha": 0.5, "pca": True, "dim": 2, "whiten": True, "fit_on": "x",
                            "whitening": "pca", "whiten_power": 0.5, "shrinkage": 0.0})
    assert [n for n, _ in postprocess_chain(cfg).steps] == ["power", "l2", "pca", "l2_final"]
    cfg = OmegaConf.create({"alpha": None, "pca": False, "dim": None, "whiten": False, "fit_on": "x",
                            "whitening": "pca", "whiten_power": 0.5, "shrinkage": 0.0})
    chain = postprocess_chain(cfg).fit(np.ones((1, 2)))
    np.testing.assert_allclose(chain.transform(np.array([[3.0, 4.0]])), [[0.6, 0.8]])


def test_sample_indices_is_seeded_and_capped():
    a, b = stages.sample_indices(100, 10, seed=3), stages.sample_indices(100, 10, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 10 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(stages.sample_indices(5, None, 0), np.arange(5))


def test_stopwatch_adds_up_named_stages_on_a_known_clock(monkeypatch):
    ticks = iter([10.0, 10.25, 20.0, 20.5, 30.0, 31.0004])   # start, end of each timed block
    monkeypatch.setattr(stages.time, "perf_counter", lambda: next(ticks))
    watch = stages.Stopwatch()
    for _ in range(2):
        with watch("fit_s"):
            pass
    with pytest.raises(KeyError), watch("search_s"):   # a failing stage still counts its time
        raise KeyError("x")
    assert watch.timings == {"fit_s": 0.75, "search_s": pytest.approx(1.0004)}
    assert watch.rounded() == {"fit_s": 0.75, "search_s": 1.0}


def _run_cfg(**over):
    cfg = {"data_root": "/nowhere", "dataset": {"name": "custom", "_target_": "benchmarks.custom.load_custom",
                                                "root": "/nowhere/custom", "ground_truth": "gnd.json",
                                                "fit_on": "paris6k"},
           "postprocess": {"pca": True, "fit_on": "demo_holdout"}, "aggregator_fit_on": "demo_holdout",
           "backbone": {"_target_": "features.sift.SiftExtractor"}}
    cfg.update(over)
    return OmegaConf.create(cfg)


def test_availability_asks_for_exactly_the_sets_the_run_reads():
    """A custom dataset whose config names paris6k as its conventional fit_on, run with
    postprocess.fit_on=demo_holdout, must not ask for paris6k (a bug of the first version)."""
    cfg = _run_cfg()
    assert fit_sets_read(cfg, learns=False) == {"postprocess.fit_on": "demo_holdout"}
    with pytest.raises(ConfigError) as e:
        check_available(cfg, learns=True)
    assert "dataset custom" in str(e.value) and "paris6k" not in str(e.value)
    cfg.postprocess.pca = False
    assert fit_sets_read(cfg, learns=False) == {}


def test_fit_cache_fits_once_per_key(tmp_path):
    calls = []

    def fit():
        calls.append(1)
        return {"state": len(calls)}

    key = fitted.fit_key(fitted.estimator_description(SumPooling(center_prior=True)), "set-A")
    assert fitted.cached_fit(tmp_path, "SumPooling", key, fit) == {"state": 1}
    assert fitted.cached_fit(tmp_path, "SumPooling", key, fit) == {"state": 1} and len(calls) == 1
    other = fitted.fit_key(fitted.estimator_description(SumPooling()), "set-A")
    assert other != key and fitted.fit_key(fitted.estimator_description(SumPooling()), "set-B") != other
    assert fitted.cached_fit(None, "x", key, fit) == {"state": 2}   # no cache: fits


def test_missing_sets_are_named_with_their_role_the_real_data_root_and_a_way_out():
    cfg = _run_cfg(postprocess={"pca": True, "fit_on": "paris6k"}, aggregator_fit_on="paris6k")
    with pytest.raises(ConfigError) as e:
        check_available(cfg, learns=True)
    text = str(e.value)
    assert "data_root=/nowhere" in text and "data_root=..." not in text
    assert "dataset custom (test set): missing" in text
    assert ("dataset paris6k (PCA-training set, postprocess.fit_on; codebook / GMM / anchor "
            "training set, aggregator_fit_on): missing images at /nowhere/paris6k/jpg") in text
    assert "postprocess.fit_on=demo_holdout" in text and "aggregator_fit_on=custom" in text


def test_the_custom_dataset_runs_offline_by_default(tmp_path):
    """Your photos and their ground truth are all a custom run needs: PCA (and codebooks) learn on
    demo_holdout, which ships with deepagg, unless you name another set."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from experiments.config import register
    (tmp_path / "custom").mkdir()
    (tmp_path / "custom" / "gnd.json").write_text("{}")
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose("config", overrides=["dataset=custom", f"data_root={tmp_path}", "aggregator=vlad"])
    GlobalHydra.instance().clear()
    assert cfg.postprocess.fit_on == "demo_holdout" and cfg.aggregator_fit_on == "demo_holdout"
    check_available(cfg, learns=True)                 # nothing missing, nothing to download


@pytest.mark.parametrize("preset,name", [("dinov2_vitb14_reg", "vit_base_patch14_reg4_dinov2"),
                                         ("siglip_vitb16", "vit_base_patch16_siglip_224")])
def test_a_transformer_preset_without_cached_weights_stops_before_any_work(tmp_path, monkeypatch,
                                                                           preset, name):
    """timm weights are downloaded once; a run where they are not cached names them (and how to
    get them) with the datasets it lacks, before anything is extracted."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from experiments.config import register
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))   # nothing cached
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"backbone={preset}"])
        check_run(cfg)                                                # the settings are sound
    GlobalHydra.instance().clear()
    assert cfg.backbone.name == name and cfg.backbone.image_size in (224, 518)
    with pytest.raises(ConfigError) as e:
        check_available(cfg, learns=False)
    assert (f"backbone weights {name} (timm, Hugging Face hub): not cached in "
            f"{tmp_path / 'empty_cache'}") in str(e.value)
    assert "data_root" not in str(e.value)          # no dataset is missing: none is mentioned


@pytest.mark.parametrize("preset,backbone,scales", [
    ("cirtorch_gem_ms", "resnet101.IMAGENET1K_V2", "[1.0, 0.7071, 0.5]"),
    ("superglobal_global", "resnet101.IMAGENET1K_V2", "[0.7071, 1.0, 1.4142]"),
    ("dinov2_cls_gem", "vit_base_patch14_reg4_dinov2 (timm", "[1.0]")])
def test_recipe_presets_compose_their_protocol_and_stop_early_listing_what_is_missing(
        tmp_path, monkeypatch, preset, backbone, scales):
    """Each published recipe is one experiment whose choices are visible in its config; without
    the datasets and the weights it stops before any work, listing all of them."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from experiments.config import register
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))             # nothing cached
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="conf", version_base="1.3"):
        base = compose("config", overrides=[f"experiment={preset}", f"data_root={tmp_path}"],
                       return_hydra_config=True)
        swept = dict(base.hydra.sweeper.params)
        cfg = compose("config", overrides=[f"experiment={preset}", f"data_root={tmp_path}"])
        check_run(cfg)
    GlobalHydra.instance().clear()
    assert swept["dataset"] == "roxford5k,rparis6k" and str(list(cfg.multiscale.scales)) == scales
    assert cfg.postprocess.pca is False and cfg.dataset.crop_queries is True
    if preset == "dinov2_cls_gem":
        assert swept["dataset.crop_queries"] == "true,false" and swept["aggregator"] == "cls,cls_gem,gem"
    if preset == "cirtorch_gem_ms":
        from aggregators import GeM
        from experiments.validate import scale_combination
        assert cfg.multiscale.combine == "mean" and scale_combination(cfg, GeM(cfg.aggregator.p)).p == 3
    if preset == "superglobal_global":
        assert cfg.multiscale.combine == "max" and cfg.aggregator.p == 4.6
    with pytest.raises(ConfigError) as e:
        check_available(cfg, learns=False, swept_datasets=["roxford5k", "rparis6k"])
    text = str(e.value)
    assert "dataset roxford5k (test set)" in text and "dataset rparis6k (test set)" in text
    assert f"backbone weights {backbone}" in text


def test_a_metric_k_past_the_database_is_refused_naming_it():
    from omegaconf import OmegaConf
    from experiments.pipeline import check_metric_ks
    cfg = OmegaConf.create({"map_at": [50, 500], "recall_at": [1], "dataset": {"name": "demo"}})
    with pytest.raises(ConfigError, match=r"map_at=\[50, 500\]: \[500\] larger than the database "
                                          r"of demo \(80 images\)"):
        check_metric_ks(cfg, 80)
    check_metric_ks(OmegaConf.create({"map_at": [80], "recall_at": [], "dataset": {"name": "d"}}), 80)


class _Rows:
    """Stored per-scale descriptors as a StoredDescriptors reads them: chunks of rows and masks."""

    def __init__(self, rows, empty, chunk):
        self.rows, self.empty, self.chunk = rows, empty, chunk

    def __len__(self):
        return len(self.rows)

    def row_chunks(self):
        for lo in range(0, len(self.rows), self.chunk):
            yield lo, self.rows[lo:lo + self.chunk], self.empty[lo:lo + self.chunk]


def test_stored_scales_combine_chunk_by_chunk_as_the_whole_matrices_do():
    """Discard mode's path: per-scale rows combined and post-processed chunk by chunk equal the
    combination of the whole matrices; an image empty at one scale is empty (a zero row)."""
    from aggregators import L2
    from aggregators.scales import ScaleCombination
    from experiments.stages import combined_descriptors
    rng = np.random.default_rng(0)
    a, b = rng.random((7, 4)).astype(np.float32), rng.random((7, 4)).astype(np.float32)
    empty_a, empty_b = np.zeros(7, bool), np.zeros(7, bool)
    empty_b[3] = True
    b[3] = 0.0
    combine = ScaleCombination("max")
    X, empty = combined_descriptors([_Rows(a, empty_a, 3), _Rows(b, empty_b, 3)], combine, L2())
    assert empty.tolist() == [False] * 3 + [True] + [False] * 3
    expected = L2().transform(combine([a, b]))
    np.testing.assert_allclose(X[~empty], expected[~empty], rtol=1e-6)
    assert not X[3].any()
