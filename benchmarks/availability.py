"""Which benchmark files are missing, said before a long run starts rather than in the middle."""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping

#: loader -> the ``deepagg-download`` name of its dataset (None: no download, e.g. your own data)
DOWNLOAD_NAMES = {
    "benchmarks.holidays.load_holidays": "holidays",
    "benchmarks.oxford.load_oxford5k": "oxford5k",
    "benchmarks.oxford.load_paris6k": "paris6k",
    "benchmarks.revisited.load_roxford5k": "roxford5k",
    "benchmarks.revisited.load_rparis6k": "rparis6k",
    "benchmarks.ukbench.load_ukbench": "ukbench",
    "benchmarks.custom.load_custom": None,
}


def missing_requirements(dataset_cfgs: Iterable[Mapping]) -> list[str]:
    """One line per missing folder or file of the given dataset configs (``conf/dataset/*.yaml``
    nodes, interpolations resolved), saying what is missing and how to get it; [] when all is there.

    Loaders without a ``required_paths`` function (the demo sets) need nothing on disk.
    """
    lines = []
    for cfg in dataset_cfgs:
        cfg = _plain(cfg)
        target = cfg.get("_target_", "")
        module_name, _, func_name = target.rpartition(".")
        try:
            module = importlib.import_module(module_name)
            loader = getattr(module, func_name)
        except (ImportError, AttributeError, ValueError):
            lines.append(f"dataset {cfg.get('name', '?')}: unknown loader {target!r}")
            continue
        required = getattr(module, "required_paths", None)
        if required is None:
            continue
        knobs = {**_defaults(loader), **{k: v for k, v in cfg.items() if not k.startswith("_")}}
        name, key = knobs.get("name", func_name), DOWNLOAD_NAMES.get(target)
        for path, what in required(**knobs):
            if path.exists():
                continue
            if what == "distractor images":
                how = "see docs/datasets.md (distractors) for the download and the layout"
            elif key:
                how = f"get it with `deepagg-download {key} --root {knobs['root']}`"
            else:
                how = "see docs/datasets.md for the layout"
            lines.append(f"dataset {name}: missing {what} at {path}; {how}")
    return lines


def _plain(cfg) -> dict:
    """A resolved plain dict from a DictConfig or a mapping."""
    try:
        from omegaconf import DictConfig, OmegaConf
        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:
        pass
    return dict(cfg)


def _defaults(func) -> dict:
    return {k: p.default for k, p in inspect.signature(func).parameters.items()
            if p.default is not inspect.Parameter.empty}
