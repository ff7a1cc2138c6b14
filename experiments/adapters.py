"""Config -> object: the datasets, extractors and feature sources an app's config describes.
The layers below take plain arguments; this is where Hydra composes and instantiates for them.
"""
from __future__ import annotations

from typing import Any, Mapping

from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from benchmarks.base import RetrievalDataset
from benchmarks.configs import resolve_dataset
from benchmarks.errors import ConfigError, DatasetError, DeepaggError, ParameterError
from features.extractor import Extractor, feature_kind
from features.multiscale import MultiScaleSource
from features.source import FeatureSource
from features.store import FeatureStore


def plain(node) -> Any:
    """A config node as plain Python (interpolations resolved); plain input is returned as is."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    if GlobalHydra.instance().is_initialized():
        return compose(overrides=overrides)
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return compose(overrides=overrides)


def known_datasets() -> list[str]:
    """Names of the dataset configs on the search path: inside a running Hydra app its own
    (``--config-dir`` additions included), elsewhere the packaged ``conf`` module's."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    if GlobalHydra.instance().is_initialized():
        return sorted(GlobalHydra.instance().config_loader().get_group_options("dataset"))
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return sorted(GlobalHydra.instance().config_loader().get_group_options("dataset"))


def dataset_config(name: str, data_root: str, key: str = "dataset") -> DictConfig:
    """The config of dataset ``name`` (``conf/dataset/NAME.yaml``, composed with its
    ``defaults``), ``${data_root}`` resolved to ``data_root``; ``key`` names the setting that
    asked for it in errors."""
    from hydra.errors import MissingConfigException

    def compose(n: str) -> DictConfig | None:
        try:
            cfg = _compose([f"+dataset={n}"])
        except MissingConfigException:
            return None
        merged = OmegaConf.merge({"data_root": data_root}, {"dataset": cfg.dataset})
        node = merged.dataset
        OmegaConf.resolve(merged)
        return node
    return resolve_dataset(name, compose, known_datasets, key)


def instantiate_group(node, group: str, error: type[DeepaggError] = ConfigError, label: str = "",
                      **kwargs):
    """``instantiate`` a config group's node (``kwargs``: arguments the app adds) with the
    constructor's errors as the user should see them: a ParameterError named ``group.param``,
    any other project error as it is, an argument the class does not take (TypeError,
    ValueError) as ``error`` naming ``label`` (default: the group), a ``_target_`` that cannot
    be built as a ConfigError. Anything else is a bug and surfaces as one."""
    from hydra.utils import instantiate
    node = plain(node)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ParameterError):
            raise cause.with_prefix(group) from None
        if isinstance(cause, DeepaggError):
            raise cause from None
        if isinstance(cause, (TypeError, ValueError)):
            raise error(f"{label or group}: {cause}") from cause
        if cause is None or isinstance(cause, ImportError):   # a _target_ that does not load
            raise ConfigError(f"{group}: cannot build {node.get('_target_')} ({cause or e})") from e
        raise


def build_dataset(cfg) -> RetrievalDataset:
    """Instantiate a dataset config; loader errors surface as they are (DatasetError naming the
    file), wrong argument names as a DatasetError naming the loader."""
    node = plain(cfg)
    return instantiate_group(node, "dataset", DatasetError,
                             f"dataset {node.get('name', node.get('_target_'))}")


def job_dataset(job_dir) -> RetrievalDataset:
    """The dataset a run evaluated, rebuilt from its job folder's ``.hydra/config.yaml``."""
    from pathlib import Path
    return build_dataset(OmegaConf.load(Path(job_dir) / ".hydra" / "config.yaml").dataset)


def build_extractor(cfg, device: str = "cpu", precision: str = "fp32",
                    decode: str = "pil") -> Extractor:
    """Instantiate a ``backbone`` config on ``device``."""
    return instantiate_group(cfg, "backbone", device=device, precision=precision, decode=decode)


def scales(cfg) -> list[float]:
    """The scale factors of an app's config (``multiscale.scales``; [1.0] where it has none)."""
    return [float(s) for s in OmegaConf.select(cfg, "multiscale.scales", default=[1.0])]


def feature_source(cfg, backbone=None, cpu_limit: int | None = None
                   ) -> FeatureSource | MultiScaleSource:
    """The source an app's config describes (``store.*``, ``device``, ``precision``, ``decode``,
    ``batch_size``, ``num_workers``, ``threads``, ``min_image_side``, ``multiscale.scales``, and
    ``shard`` / ``num_shards`` where present; ``backbone`` defaults to ``cfg.backbone``), threads
    and workers sized to this job (``cpu_limit``: the cores its launcher granted, if it said
    so). Scales other than [1] give a MultiScaleSource (one store entry per scale)."""
    from features import resources
    backbone: Mapping = plain(cfg.backbone if backbone is None else backbone)
    _, workers = resources.apply(cfg.threads, cfg.num_workers, cfg.device, feature_kind(backbone),
                                 cpu_limit)
    st = cfg.store
    store = FeatureStore(st.root, st.dtype, st.chunk_size, st.verify_checksums,
                         st.get("verify_images", False))
    source = FeatureSource(
        store, backbone, lambda: build_extractor(backbone, cfg.device, cfg.precision, cfg.decode),
        precision=cfg.precision, decode=cfg.decode,
        batch_size=resources.batch_size(cfg.batch_size, cfg.device), num_workers=workers,
        min_image_side=cfg.min_image_side,
        shard=(int(cfg.get("shard", 0)), int(cfg.get("num_shards", 1))))
    return source if scales(cfg) == [1.0] else MultiScaleSource(source, scales(cfg))
