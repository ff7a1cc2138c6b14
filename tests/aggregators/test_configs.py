"""Every aggregator config instantiates; the aggregation experiments compose into valid jobs."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

import aggregators
from experiments.config import register

CONF = Path(aggregators.__file__).resolve().parents[1] / "conf"
EXPECTED = {"fv16": aggregators.FisherVector, "fv256": aggregators.FisherVector,
            "vlad": aggregators.VLAD, "temb1": aggregators.TriangulationEmbedding,
            "temb16": aggregators.TriangulationEmbedding, "gem": aggregators.GeM,
            "rmac": aggregators.RMAC, "crow": aggregators.CroW}


@pytest.fixture
def compose_run():
    register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="conf", version_base=None):
        yield lambda *overrides: compose("config", overrides=list(overrides),
                                         return_hydra_config=True)
    GlobalHydra.instance().clear()


def test_every_aggregator_config_instantiates(compose_run):
    names = sorted(p.stem for p in (CONF / "aggregator").glob("*.yaml"))
    assert set(EXPECTED) <= set(names)
    for name in names:
        cfg = compose_run(f"aggregator={name}")
        agg = instantiate(cfg.aggregator)
        assert isinstance(agg, aggregators.Aggregator), name
        if name in EXPECTED:
            assert type(agg) is EXPECTED[name]
            assert first_comment_line(CONF / "aggregator" / f"{name}.yaml")
    assert compose_run("aggregator=fv256").aggregator.n_components == 256
    assert compose_run("aggregator=temb16").aggregator.n_anchors == 16


def first_comment_line(path: Path) -> str:
    line = path.read_text().splitlines()[0]
    return line[1:].strip() if line.startswith("#") else ""


@pytest.mark.parametrize("experiment,axis,expected", [
    ("paper_aggregation", "aggregator", "fv16,fv256,temb1,temb16,max,sum,spoc"),
    ("gem_p", "aggregator.p", "1,2,3,4,5,6,7,8,inf"),
])
def test_aggregation_experiments_compose_into_valid_jobs(compose_run, experiment, axis, expected):
    cfg = compose_run(f"experiment={experiment}")
    assert cfg.experiment_name == experiment and cfg.postprocess.dim == 256
    params = cfg.hydra.sweeper.params
    assert params[axis] == expected and params["dataset"] == "holidays,oxford5k"
    for value in expected.split(","):   # every job of the aggregator axis builds its aggregator
        agg = instantiate(compose_run(f"experiment={experiment}", f"{axis}={value}").aggregator)
        if axis == "aggregator.p":
            assert isinstance(agg, aggregators.GeM) and agg.p == float(value)


def test_demo_aggregation_sweeps_every_aggregator_over_deep_and_sift(compose_run):
    cfg = compose_run("experiment=demo_aggregation")
    params = cfg.hydra.sweeper.params
    assert params["backbone"] == "efficientnet_lite0,sift"
    assert cfg.postprocess.fit_on == "demo_holdout" and cfg.postprocess.dim == 128
    for backbone in params["backbone"].split(","):
        for name in params["aggregator"].split(","):
            job = compose_run("experiment=demo_aggregation", f"backbone={backbone}", f"aggregator={name}")
            assert job.backbone._target_.endswith("SiftExtractor" if backbone == "sift" else "DeepExtractor")
            instantiate(job.aggregator)
