"""The dataset registry: one entry per loader of conf/dataset, consistent with what the loaders
say, recipes the downloader can follow, and no heavy import on the deepagg-download path."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import registry
from benchmarks.errors import DatasetError
from benchmarks.registry import ENTRIES, Requirement

CONF = Path(__file__).resolve().parents[2] / "conf" / "dataset"
LOADED = [e for e in ENTRIES.values() if e.loader is not None]


def _config_targets() -> set[str]:
    text = "\n".join(p.read_text() for p in CONF.glob("*.yaml"))
    return set(re.findall(r"^_target_:\s*(\S+)", text, re.M))


def test_every_dataset_config_loader_has_exactly_one_entry():
    targets = _config_targets()
    assert targets, f"no _target_ found under {CONF}"
    for target in targets:
        assert registry.entry_for_loader(target) is not None, f"{target} has no registry entry"
    loaders = [e.loader for e in LOADED]
    assert len(loaders) == len(set(loaders)) and set(loaders) == targets
    assert registry.entry_for_loader("benchmarks.oxford.load_buildings") is None


@pytest.mark.parametrize("entry", [e for e in LOADED if e.required is not None], ids=lambda e: e.key)
def test_required_files_are_read_from_the_loader_arguments(entry):
    loader = inspect.signature(entry.loader_function()).parameters
    named = [p for p, v in inspect.signature(entry.required).parameters.items() if v.kind != v.VAR_KEYWORD]
    assert named and set(named) <= set(loader), f"{entry.key}: {set(named) - set(loader)} are not arguments"


@pytest.mark.parametrize("entry", [e for e in LOADED if e.required is not None], ids=lambda e: e.key)
def test_loader_errors_print_the_entry_layout_and_how_to_get_it(entry, tmp_path):
    params = inspect.signature(entry.loader_function()).parameters
    root = tmp_path / "missing"
    kwargs = {p: "gnd.json" for p, v in params.items() if v.default is v.empty and p != "root"}
    with pytest.raises(DatasetError) as e:
        entry.loader_function()(root=root, **kwargs)
    assert entry.layout in str(e.value)
    how = f"deepagg-download {entry.key} --root {root}" if entry.recipe else "docs/datasets.md"
    assert how in str(e.value)


def test_recipes_can_be_followed():
    assert registry.downloadable() == ["flickr100k", "gldv2", "holidays", "instre", "oxford5k", "paris6k",
                                       "revisitop1m", "roxford5k", "rparis6k", "ukbench"]
    for key in registry.downloadable():
        recipe = ENTRIES[key].recipe
        assert bool(recipe.remotes) != bool(recipe.manual), key
        names = [r.filename for r in recipe.remotes]
        assert len(names) == len(set(names)), f"{key}: two remotes share a .done marker"
        assert all(r.url.startswith(("http://", "https://", "ftp://")) for r in recipe.remotes)
        assert recipe.n_images is None or recipe.images_in, key
    assert len(ENTRIES["revisitop1m"].recipe.remotes) == 101  # 100 archives and the list


def test_requirements_fill_in_the_loader_defaults():
    d = Path("/data")
    got = ENTRIES["roxford5k"].requirements(root=str(d / "roxford5k"), name="roxford5k_r1m", fit_on="rpar",
                                            distractors_root=str(d / "revisitop1m" / "jpg"),
                                            distractors_list=str(d / "revisitop1m" / "revisitop1m.txt"))
    rox, r1m = d / "roxford5k", d / "revisitop1m"
    assert got == [Requirement(rox / "jpg", "images", "roxford5k", rox),
                   Requirement(rox / "gnd_roxford5k.pkl", "ground truth", "roxford5k", rox),
                   Requirement(r1m / "jpg", "distractor images", "revisitop1m", r1m),
                   Requirement(r1m / "revisitop1m.txt", "distractor list", "revisitop1m", r1m)]
    assert ENTRIES["rparis6k"].requirements(root="/r")[1].path == Path("/r/gnd_rparis6k.pkl")
    assert ENTRIES["demo"].requirements(name="demo", split="test") == []
    with pytest.raises(DatasetError, match="sets no ground_truth"):
        ENTRIES["custom"].requirements(root="/c")


def test_unknown_entry_lists_the_known_ones():
    with pytest.raises(DatasetError, match="unknown dataset 'oxford'.*oxford5k"):
        registry.entry("oxford")


def test_download_path_imports_no_heavy_library_and_loaders_do_not_import_downloads():
    code = ("import sys, benchmarks.downloads, benchmarks.availability; "
            "print(sorted(m for m in ('cv2', 'torch', 'sklearn', 'matplotlib', 'pandas', 'benchmarks.demo') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
    code = ("import sys, benchmarks.holidays, benchmarks.oxford, benchmarks.revisited, benchmarks.ukbench, "
            "benchmarks.custom, benchmarks.distractors, benchmarks.gldv2, benchmarks.instre; "
            "print([m for m in ('benchmarks.downloads', 'benchmarks.registry') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
