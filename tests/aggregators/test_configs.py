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

def test_a_config_name_with_a_size_builds_that_size(compose_run):
    """fv16 has 16 Gaussians, temb1 one anchor: the number in a config's name is the size."""
    size_of = {aggregators.FisherVector: "n_components", aggregators.TriangulationEmbedding: "n_anchors"}
    for path in sorted((CONF / "aggregator").glob("*.yaml")):
        agg = instantiate(compose_run(f"aggregator={path.stem}").aggregator)
        digits = "".join(c for c in path.stem if c.isdigit())
        if type(agg) in size_of:
            assert digits and getattr(agg, size_of[type(agg)]) == int(digits), path.name


def first_comment_line(path: Path) -> str:
    line = path.read_text().splitlines()[0]
    return line[1:].strip() if line.startswith("#") else ""


def test_paper_aggregation_runs_every_method_and_dataset_of_the_papers_table(compose_run):
    """Its jobs are the cells of Babenko & Lempitsky's table (analysis/paper.py) on the two
    datasets it reports every method on, at the paper's 256 dimensions."""
    from analysis.paper import PAPER_DIM, PAPER_RESULTS
    cfg = compose_run("experiment=paper_aggregation")
    params = cfg.hydra.sweeper.params
    methods = {a for a, _ in PAPER_RESULTS}
    everywhere = {d for _, d in PAPER_RESULTS if all((a, d) in PAPER_RESULTS for a in methods)}
    assert set(params["aggregator"].split(",")) == methods
    assert set(params["dataset"].split(",")) == everywhere
    for name in sorted(methods):
        job = compose_run("experiment=paper_aggregation", f"aggregator={name}")
        assert job.postprocess.dim == PAPER_DIM and isinstance(instantiate(job.aggregator),
                                                               aggregators.Aggregator)


def test_gem_p_builds_one_gem_per_exponent_of_its_axis(compose_run):
    axis = compose_run("experiment=gem_p").hydra.sweeper.params["aggregator.p"].split(",")
    for value in axis:
        agg = instantiate(compose_run("experiment=gem_p", f"aggregator.p={value}").aggregator)
        assert isinstance(agg, aggregators.GeM) and agg.p == float(value)
    assert float("inf") in [float(v) for v in axis] and 1.0 in [float(v) for v in axis]   # MAC and mean


def test_demo_aggregation_sweeps_every_aggregator_family_over_deep_and_sift(compose_run):
    """Every aggregator class with a config meets deep and SIFT features, each fitted on a set
    other than the test set."""
    cfg = compose_run("experiment=demo_aggregation")
    params = cfg.hydra.sweeper.params
    configs = sorted(p.stem for p in (CONF / "aggregator").glob("*.yaml"))
    every_class = {type(instantiate(compose_run(f"aggregator={n}").aggregator)) for n in configs}
    swept = {type(instantiate(compose_run(f"aggregator={n}").aggregator))
             for n in params["aggregator"].split(",")}
    dense_only = {c for c in every_class if c.requires_grid}   # R-MAC, CroW: no SIFT
    tokens_only = {c for c in every_class if c.requires_cls_token}   # a transformer's CLS
    assert swept | dense_only | tokens_only == every_class
    vit = compose_run("experiment=demo_vit").hydra.sweeper.params["aggregator"].split(",")
    assert tokens_only <= {type(instantiate(compose_run(f"aggregator={n}").aggregator)) for n in vit}
    kinds = {compose_run(f"backbone={b}").backbone._target_ for b in params["backbone"].split(",")}
    assert kinds == {"features.deep.DeepExtractor", "features.sift.SiftExtractor"}
    assert cfg.postprocess.fit_on != cfg.dataset.name
    for backbone in params["backbone"].split(","):
        for name in params["aggregator"].split(","):
            job = compose_run("experiment=demo_aggregation", f"backbone={backbone}", f"aggregator={name}")
            assert job.backbone._target_.endswith("SiftExtractor" if backbone == "sift" else "DeepExtractor")
            instantiate(job.aggregator)
