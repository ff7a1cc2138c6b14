"""conf/dataset/*.yaml match their loaders; availability reports what is missing; paper_table composes."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks.availability import missing_requirements

CONF = Path(__file__).resolve().parents[2] / "conf"
REAL = ["holidays", "holidays_rotated", "oxford5k", "oxford105k", "paris6k", "paris106k", "roxford5k",
        "rparis6k", "ukbench", "custom", "custom_csv", "custom_h5", "gldv2", "instre"]


def _dataset_cfg(name: str, data_root: Path):
    from experiments.adapters import dataset_config
    return dataset_config(name, str(data_root))


@pytest.mark.parametrize("name", REAL)
def test_keys_are_the_loader_arguments_and_fit_on_names_a_dataset(name):
    """Every key of a dataset config, fit_on included, is an argument of its loader."""
    node = _dataset_cfg(name, Path("/data"))
    module, _, func = node._target_.rpartition(".")
    params = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    knobs = set(node) - {"_target_"}
    assert knobs <= set(params), f"{name}: keys {knobs - set(params)} are not arguments of {node._target_}"
    assert {p for p, v in params.items() if v.default is inspect.Parameter.empty} <= knobs
    assert node.name == name and "defaults" not in node  # composed: the defaults list is resolved
    assert (CONF / "dataset" / f"{node.fit_on}.yaml").is_file() and node.fit_on != name


def test_availability_lists_what_is_missing_and_how_to_get_it(tmp_path):
    cfgs = [_dataset_cfg(n, tmp_path) for n in ("holidays", "oxford105k", "roxford5k", "custom")]
    lines = missing_requirements(cfgs)
    text = "\n".join(lines)
    assert f"deepagg-download holidays --root {tmp_path / 'holidays'}" in text
    assert "dataset oxford105k: missing ground truth at " + str(tmp_path / "oxford5k" / "gt_files") in text
    assert "distractor images at " + str(tmp_path / "flickr100k") in text
    assert str(tmp_path / "roxford5k" / "gnd_roxford5k.pkl") in text
    assert "dataset custom: missing ground truth at " + str(tmp_path / "custom" / "gnd.json") in text
    for sub in ("holidays", "oxford5k/jpg", "oxford5k/gt_files", "flickr100k", "roxford5k/jpg", "custom"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "roxford5k" / "gnd_roxford5k.pkl").write_bytes(b"")
    (tmp_path / "custom" / "gnd.json").write_text("{}")
    assert missing_requirements(cfgs) == []
    assert missing_requirements([{"_target_": "benchmarks.demo.demo_dataset", "name": "demo"}]) == []
    assert "unknown loader" in missing_requirements([{"_target_": "nowhere.load", "name": "x"}])[0]


def test_paper_table_sweeps_the_four_benchmarks_with_their_fit_on_sets():
    if not (CONF / "backbone" / "vgg19_paper.yaml").is_file():
        pytest.skip("conf/backbone/vgg19_paper.yaml not written yet")
    from experiments.config import register

    register()
    want = {"holidays": "oxford5k", "oxford5k": "paris6k", "oxford105k": "paris6k", "ukbench": "oxford5k"}
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        base = compose("config", overrides=["experiment=paper_table"], return_hydra_config=True)
        assert base.hydra.sweeper.params.dataset.split(",") == list(want)
        for dataset, fit_on in want.items():
            cfg = compose("config", overrides=["experiment=paper_table", f"dataset={dataset}"])
            assert cfg.dataset.name == dataset and cfg.postprocess.fit_on == fit_on
            assert cfg.postprocess.dim == 256 and cfg.backbone.name == "vgg19" and cfg.backbone.ceil_mode


@pytest.mark.parametrize("child,parent", [("oxford105k", "oxford5k"), ("paris106k", "paris6k"),
                                          ("holidays_rotated", "holidays"), ("demo_holdout", "demo")])
def test_variants_inherit_from_their_base_and_type_nothing_twice(child, parent):
    """A variant's file holds only what differs from its base (issue: paris106k re-typed the
    exclusion list); composed, it has every key of its base."""
    own = OmegaConf.load(CONF / "dataset" / f"{child}.yaml")
    assert list(own.defaults) == [parent, "_self_"]
    base, composed = _dataset_cfg(parent, Path("/d")), _dataset_cfg(child, Path("/d"))
    assert set(base) <= set(composed)
    for key in base:
        if key not in own:
            assert composed[key] == base[key], key


def test_a_loaded_dataset_knows_its_conventional_fitting_set():
    from experiments.adapters import build_dataset
    for name, fit_on in (("demo", "demo_holdout"), ("demo_holdout", "demo")):
        node = _dataset_cfg(name, Path("/data"))
        assert node.fit_on == fit_on and build_dataset(node).fit_on == fit_on
    from benchmarks.demo import demo_dataset
    assert demo_dataset(views_per_photo=2).fit_on is None     # loaders leave it to the configs
