"""Resolving a dataset by name: its Hydra config (``conf/dataset/NAME.yaml``, composed with its
``defaults`` list, so configs inherit from each other) and the dataset it builds.

Used by every app that names datasets (the run app's ``fit_on`` sets, the similarity study,
retrieval examples). Inside a running Hydra app the app's own search path is used (so
``--config-dir`` additions are found); elsewhere the packaged ``conf`` module.
"""
from __future__ import annotations

from typing import Any

from benchmarks.errors import ConfigError, DatasetError, DeepaggError

#: dataset config keys that are not loader arguments
NON_LOADER_KEYS = ("fit_on",)


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    if GlobalHydra.instance().is_initialized():
        return compose(overrides=overrides)
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return compose(overrides=overrides)


def known_datasets() -> list[str]:
    """Names of the dataset configs on the search path."""
    from hydra.core.global_hydra import GlobalHydra
    if GlobalHydra.instance().is_initialized():
        loader = GlobalHydra.instance().config_loader()
        return sorted(loader.get_group_options("dataset"))
    from hydra import initialize_config_module
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options("dataset"))


def dataset_config(name: str, data_root: str, key: str = "dataset"):
    """The DictConfig of dataset ``name``, ``${data_root}`` resolved to ``data_root``.

    ``key`` names the setting that asked for it (``postprocess.fit_on``, ...) in errors."""
    from hydra.errors import MissingConfigException
    from omegaconf import OmegaConf
    if not isinstance(name, str) or not name or "=" in name or "/" in name:
        raise ConfigError(f"{key}={name!r}: not a dataset config name; known: {', '.join(known_datasets())}")
    try:
        cfg = _compose([f"+dataset={name}"])
    except MissingConfigException:
        raise ConfigError(f"{key}={name!r}: no dataset config of that name; known datasets: "
                          f"{', '.join(known_datasets())}") from None
    merged = OmegaConf.merge({"data_root": data_root}, {"dataset": cfg.dataset})
    node = merged.dataset
    OmegaConf.resolve(merged)
    return node


def loader_arguments(cfg) -> dict[str, Any]:
    """A dataset config as plain loader arguments (``_target_`` kept, ``fit_on`` removed)."""
    from omegaconf import OmegaConf
    node = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    for k in NON_LOADER_KEYS:
        node.pop(k, None)
    return node


def build_dataset(cfg):
    """Instantiate a dataset config; loader errors surface as they are (DatasetError naming the
    file), wrong argument names as a ConfigError naming the loader."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    node = loader_arguments(cfg)
    try:
        return instantiate(node)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, DeepaggError):
            raise cause from None
        if isinstance(cause, (TypeError, ValueError)):
            raise DatasetError(f"dataset {node.get('name', node.get('_target_'))}: {cause}") from cause
        raise
