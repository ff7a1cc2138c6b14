"""Resolving a dataset by name, as a pure function: the app hands it a ``compose`` function that
returns the config of a name (``conf/dataset/NAME.yaml`` with its ``defaults``, as a plain mapping,
or None when there is no such config) and a ``known`` function listing the names; this module
checks the name and says what exists. No Hydra here: experiments/adapters.py composes.
"""
from __future__ import annotations

from typing import Callable, Mapping

from benchmarks.errors import ConfigError


def resolve_dataset(name: str, compose: Callable[[str], Mapping | None],
                    known: Callable[[], list[str]], key: str = "dataset") -> Mapping:
    """The config of dataset ``name`` from ``compose(name)``; ``key`` names the setting that
    asked for it (``postprocess.fit_on``, ...) in errors, which list the ``known()`` names."""
    if not isinstance(name, str) or not name or "=" in name or "/" in name:
        raise ConfigError(f"{key}={name!r}: not a dataset config name; known: {', '.join(known())}")
    node = compose(name)
    if node is None:
        raise ConfigError(f"{key}={name!r}: no dataset config of that name; known datasets: "
                          f"{', '.join(known())}")
    return node

