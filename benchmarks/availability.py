"""Which benchmark files are missing, said before a long run starts rather than in the middle."""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping

from benchmarks import registry
from benchmarks.errors import DatasetError


def missing_requirements(dataset_cfgs: Iterable[Mapping], roles: Mapping[str, str] | None = None
                         ) -> list[str]:
    """One line per missing folder or file of the given dataset configs (``conf/dataset/*.yaml``
    as plain mappings, interpolations resolved), saying what is missing and how to get it; [] when all is there.
    ``roles`` ({dataset name: role}, e.g. "PCA-training set, postprocess.fit_on") is named after
    the dataset in its lines.

    The files come from the registry entry of each config's ``_target_``. A loader the registry does
    not know (one of your own) is not checked; one that cannot be imported is reported.
    """
    roles = roles or {}
    lines = []

    def label(name) -> str:
        return f"dataset {name} ({roles[name]})" if name in roles else f"dataset {name}"

    for cfg in dataset_cfgs:
        cfg = dict(cfg)
        target = cfg.get("_target_", "")
        knobs = {k: v for k, v in cfg.items() if not k.startswith("_")}
        entry = registry.entry_for_loader(target)
        if entry is None:
            if not target:
                lines.append(f"{label(cfg.get('name', '?'))}: the config names no loader (_target_)")
            elif not _importable(target):
                lines.append(f"{label(cfg.get('name', '?'))}: unknown loader {target!r}")
            continue
        name = knobs.get("name", entry.key)
        try:
            needed = entry.requirements(**knobs)
        except DatasetError as e:
            lines.append(f"{label(name)}: {e}")
            continue
        lines += [f"{label(name)}: missing {r.what} at {r.path}; {r.how()}" for r in needed
                  if not r.path.exists()]
    return lines


def _importable(target: str) -> bool:
    module, _, name = target.rpartition(".")
    try:
        return callable(getattr(importlib.import_module(module), name))
    except (ImportError, AttributeError, ValueError):
        return False
