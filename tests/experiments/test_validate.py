"""Every setting that can be checked without data is checked before any work, naming its key."""
import sys

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from benchmarks.errors import DeepaggError
from experiments.config import register
from features.resources import cores_available, plan
from experiments.validate import check_run


@pytest.fixture(scope="module")
def compose_run():
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="conf", version_base="1.3"):
        yield lambda *o: compose("config", overrides=list(o))
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("overrides,named", [
    (["backbone.image_size=0"], "backbone.image_size=0"),
    (["batch_size=0"], "batch_size=0"), (["batch_size=-2"], "batch_size=-2"),
    (["num_workers=-3"], "num_workers=-3"), (["threads=0"], "threads=0"),
    (["postprocess.dim=0"], "postprocess.dim=0"), (["postprocess.dim=-5"], "postprocess.dim=-5"),
    (["aggregator=gem", "aggregator.p=0"], "aggregator.p=0"),
    (["aggregator=vlad", "aggregator.n_clusters=0"], "aggregator.n_clusters=0"),
    (["empty_images=maybe"], "empty_images='maybe'"),
    (["rerank=aqe", "rerank.k=-1"], "rerank.k=-1"), (["rerank=alpha_qe", "rerank.alpha=-1"], "rerank.alpha=-1"),
    (["precision=fp8"], "precision='fp8'"), (["device=gpu"], "device='gpu'"),
    (["store.dtype=int8"], "store.dtype='int8'"), (["store.chunk_size=0"], "store.chunk_size=0"),
    (["store.local_features=drop"], "store.local_features='drop'"),
    (["top_k=0"], "top_k=0"), (["min_image_side=0"], "min_image_side=0"),
    (["postprocess.alpha=0"], "postprocess.alpha=0.0: must be null or a number > 0 (null: no power law)"),
    (["max_fit_images=1"], "max_fit_images=1: must be null or an integer >= 2"),
    (["search_backend=annoy"], "search_backend='annoy': expected one of ('numpy', 'faiss')"),
    (["backbone.resize=crop"], "backbone.resize='crop'"),
    (["backbone=vgg16", "backbone.weights=IMAGENET9K"], "backbone.weights='IMAGENET9K': not a weights name"),
    (["+backbone.foo=1"], "backbone: DeepExtractor has no argument foo"),
    (["+postprocess.dimm=3"], "postprocess.dimm: postprocess has no key 'dimm'"),
    (["+store.x=1"], "store.x: store has no key 'x'"), (["+batchsize=4"], "the config has no key 'batchsize'"),
    (["+aggregator.foo=1"], "aggregator:"),
    (["postprocess.pca=false"], "postprocess.whiten=true needs postprocess.pca=true"),
    (["multiscale.scales=[]"], "multiscale.scales=[]: a non-empty list of numbers > 0"),
    (["multiscale.scales=[1,-0.5]"], "multiscale.scales=[1, -0.5]"),
    (["multiscale.scales=[1,1]"], "each scale once"),
    (["multiscale.combine=median"], "multiscale.combine='median'"),
    (["multiscale=cirtorch", "multiscale.p=0"], "multiscale.p=0"),
    (["multiscale=cirtorch", "backbone=sift"], "multiscale.scales=[1.0, 0.7071, 0.5]: the backbone "
     "(features.sift.SiftExtractor) cannot resize by a scale"),
    (["multiscale=delg", "+backbone.scale=0.5"], "backbone.scale=0.5 and multiscale.scales"),
    (["+backbone.scale=-1"], "backbone.scale=-1"),
    (["multiscale.scales=[1,8]"], "scales up to 4.0"),
    (["multiscale.scales=[1,0.05]"], "scale 0.05 makes backbone.image_size=384 images of 19 px, below min_image_side=32"),
    (["map_at=[100,0]"], "map_at=0: must be a positive integer (the k of a metric)"),
    (["codes=binary", "codes.bytes=64"], "codes.bytes=64: binary codes of 64 bytes need 512 dimensions"),
    (["codes=pq", "codes.bytes=7"], "codes.bytes=7: pq splits the 256 dimensions into 7 equal slices"),
    (["codes.kind=lsh"], "codes.kind='lsh'"),
    (["codes.rescore=10"], "codes.rescore=10: re-scores the short list of a search over compact codes"),
    (["codes=pq", "codes.rescore=-1"], "codes.rescore=-1"),
    (["codes=pq", "codes.rescore=5", "rerank=aqe"], "codes.rescore=5 with a re-ranking"),
    (["recall_at=[1.5]"], "recall_at=1.5"),
    (["rerank=diffusion", "rerank.alpha=1"], "rerank.alpha=1: must be in (0, 1)"),
    (["rerank=diffusion", "rerank.truncation=5"], "rerank.query_k=10: more seeds than the 5 results"),
    (["rerank=k_reciprocal", "rerank.lambda_value=2"], "rerank.lambda_value=2"),
    (["rerank=superglobal", "rerank.K=400"], "rerank.K=400: needs K < M = 400"),
    (["postprocess.whitening=lw"], "postprocess.whitening='lw'"),
    (["postprocess=learned_whiten", "postprocess.pca=false", "postprocess.whiten=false"], "postprocess.whitening=learned needs postprocess.pca=true"),
    (["postprocess.whiten_power=-1"], "postprocess.whiten_power=-1"),
    (["postprocess=learned_whiten", "postprocess.whiten_power=0.25"], "whitening=learned whitens by construction"),
    (["postprocess.shrinkage=1.5"], "postprocess.shrinkage=1.5: must be in [0, 1]"),
])
def test_bad_settings_are_named_before_any_work(compose_run, overrides, named):
    with pytest.raises(DeepaggError) as e:
        check_run(compose_run(*overrides))
    assert named in str(e.value)


def test_a_short_list_longer_than_the_database_is_named(compose_run):
    from experiments.pipeline import check_metric_ks
    with pytest.raises(DeepaggError, match="codes.rescore=81: a short list longer than the database of demo"):
        check_metric_ks(compose_run("codes=pq", "codes.rescore=81"), 80)
    check_metric_ks(compose_run("codes=pq", "codes.rescore=80"), 80)


def test_the_default_config_passes(compose_run):
    check_run(compose_run())
    check_run(compose_run("experiment=demo_aggregation", "backbone=sift", "aggregator=fv16"))
    for preset in ("cirtorch", "delg", "superglobal", "superglobal5"):
        check_run(compose_run(f"multiscale={preset}", "aggregator=gem"))
    from aggregators import ClsToken, GeM, SumPooling
    from experiments.validate import scale_combination, scales_label
    cfg = compose_run("multiscale=cirtorch", "aggregator=gem", "aggregator.p=4")
    assert scale_combination(cfg, GeM(p=4)).p == 4       # cirtorch's mean takes GeM's p ...
    assert scale_combination(cfg, ClsToken(p=4)).p == 1  # ... not another aggregator's p
    assert scale_combination(cfg, SumPooling()).p == 1
    assert scales_label(cfg, GeM(p=4)) == "1,0.7071,0.5 mean p=4"
    assert scales_label(compose_run("+backbone.scale=0.5"), GeM()) == "0.5"   # one other scale
    assert scales_label(compose_run(), GeM()) == "1"


def test_threads_and_workers_follow_the_cores_of_the_job(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")                 # e.g. a joblib launcher worker
    assert cores_available() == 1 and plan(None, None) == (1, 0)
    assert plan(3, 2) == (3, 2)                                # explicit settings win
    from features import resources
    monkeypatch.setattr(resources, "cores_available",              # a 4-core job
                        lambda limit=None: min(4, limit or 4))
    assert plan(None, None, "cpu", "deep", cpu_limit=2) == (2, 0)   # a launcher granted 2
    assert plan(None, None, "cpu", "deep") == (4, 0)           # the CNN needs every core
    assert plan(None, None, "cuda", "deep") == (4, 3)          # decode while the GPU computes
    assert plan(None, None, "cpu", "sift") == (4, 4)           # SIFT runs in the workers
    assert resources.batch_size(None, "cpu") == 1 and resources.batch_size(None, "cuda:1") == 32
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert cores_available() == 1


def test_a_broken_faiss_install_is_named_as_broken_not_missing(compose_run, tmp_path, monkeypatch):
    # a faiss package that exists but cannot be imported (a wheel for another CPU or numpy)
    (tmp_path / "faiss").mkdir()
    (tmp_path / "faiss" / "__init__.py").write_text("raise ImportError('libfaiss.so: undefined symbol')")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "faiss", raising=False)
    with pytest.raises(DeepaggError, match="installed but does not import .*undefined symbol"):
        check_run(compose_run("search_backend=faiss"))


def test_a_dataset_name_with_a_slash_is_refused_before_work(compose_run):
    with pytest.raises(DeepaggError, match=r"dataset.name='../x'"):
        check_run(compose_run("dataset.name=../x"))


@pytest.mark.parametrize("overrides,named", [
    (["rerank=diffusion", "rerank.k=80"], "rerank.k=80: larger than the database allows (80 images)"),
    (["rerank=k_reciprocal", "rerank.k1=90"], "rerank.k1=90: larger than the database allows"),
    (["rerank=superglobal", "rerank.M=5", "rerank.K=5"], "rerank.K=5: needs K < M = 5"),
    (["postprocess=learned_whiten", "postprocess.dim=280"],
     "the 4464 matching pairs of postprocess.fit_on=demo_holdout span at most 279 dimensions"),
])
def test_settings_the_datasets_refute_stop_before_any_extraction(compose_run, overrides, named, tmp_path):
    """Checked against the test and fitting sets' sizes and ground truth, before the store is
    touched: the run raises before any extraction (the store stays empty)."""
    from experiments.pipeline import evaluate_config

    class NoFeatures:
        def features(self, *a, **k):
            raise AssertionError("features read before the settings were checked")
    with pytest.raises(DeepaggError) as e:
        evaluate_config(compose_run(*overrides), NoFeatures(), tmp_path)
    assert named in str(e.value)
