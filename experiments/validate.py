"""Every setting that can be checked without data, checked before any work; each message names
its key (``aggregator.p``, ``postprocess.dim``, ``batch_size``, ...)."""
from __future__ import annotations

import inspect

from omegaconf import DictConfig, OmegaConf

from benchmarks.constraints import Device, Integer, OneOf, Real, check_values
from benchmarks.errors import ConfigError, ParameterError
from experiments.adapters import instantiate_group, plain

EMPTY_POLICIES = ("error", "zero")
#: the largest factor of multiscale.scales (SuperGlobal's largest is 2)
MAX_SCALE = 4.0


#: what the run's own settings and the post-processing settings must be
RUN = {"empty_images": OneOf(EMPTY_POLICIES), "top_k": Integer(),
       "search_backend": OneOf(("numpy", "faiss")), "max_fit_images": Integer(2, optional=True),
       "seed": Integer(0)}
POSTPROCESS = {"dim": Integer(optional=True),
               "alpha": Real(0, low_open=True, optional=True, note="null: no power law"),
               "whitening": OneOf(("pca", "learned")),
               "whiten_power": Real(0, note="0.5: full whitening"),
               "shrinkage": Real(0, 1)}


def check_execution(cfg: DictConfig) -> None:
    """device, precision, decode, batch_size, num_workers, threads, min_image_side, store.*."""
    from features.deep import DECODERS, PRECISIONS
    from features.store import FeatureStore
    check_values(cfg, {"batch_size": Integer(1, optional=True), "num_workers": Integer(0, optional=True),
                       "threads": Integer(1, optional=True), "min_image_side": Integer(1),
                       "precision": OneOf(PRECISIONS), "decode": OneOf(DECODERS), "device": Device()})
    try:
        FeatureStore(cfg.store.root, cfg.store.dtype, cfg.store.chunk_size)
    except ParameterError as e:
        raise e.with_prefix("store") from None


def check_backbone(backbone) -> None:
    """The backbone's keys are its class's constructor arguments; resize settings are sane; a
    weights name the model has (``check_weights``). A weights file and the layer are checked
    when the model is built (only if something is extracted)."""
    from hydra.utils import get_class

    from features.resize import check_resize_settings
    from features.weights import check_weights
    node = dict(plain(backbone))
    target = node.get("_target_")
    if not target:
        raise ConfigError("backbone: the config has no _target_ (e.g. features.deep.DeepExtractor)")
    try:
        cls = get_class(target)
    except Exception as e:  # noqa: BLE001 - hydra raises several types for a bad path
        raise ConfigError(f"backbone._target_={target!r}: cannot import it ({e})") from None
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(node) - accepted - {"_target_"})
    if unknown:
        raise ConfigError(f"backbone: {cls.__name__} has no argument {', '.join(unknown)}; it takes "
                          f"{', '.join(sorted(accepted - {'device', 'precision', 'decode'}))}")
    try:
        if {"resize", "image_size", "interpolation"} <= set(node):
            check_resize_settings(cls.__name__, node["resize"], node["image_size"], node["interpolation"])
        if "scale" in node:
            from features.deep import check_scale
            check_scale(node["scale"], cls.__name__)
        if {"source", "name", "weights"} <= set(node):
            check_weights(node["source"], node["name"], node["weights"], files=False)
        elif target == "features.vit.TokenExtractor" and "weights" in node:
            check_weights("timm", node.get("name", ""), node["weights"], files=False)
    except ParameterError as e:
        raise e.with_prefix("backbone") from None


def scale_combination(cfg, agg):
    """The ScaleCombination of ``multiscale`` for aggregator ``agg`` (``p: null`` resolved to its
    GeM p, or 1; ParameterError naming ``multiscale.KEY``)."""
    from aggregators.scales import ScaleCombination, mean_power
    try:
        return ScaleCombination(cfg.multiscale.combine, mean_power(cfg.multiscale.p, agg))
    except ParameterError as e:
        raise e.with_prefix("multiscale") from None


def scales_label(cfg, agg) -> str:
    """The ``scales`` of a run's record and tables: "1" for the image as the resize policy gives
    it, one factor for a single other scale (``backbone.scale`` or ``multiscale.scales``), else
    the scales and their combination, e.g. "1,0.7071,0.5 mean p=3"."""
    ms = cfg.get("multiscale")
    scales = [float(s) for s in ms.scales] if ms is not None else [1.0]
    if len(scales) == 1:
        return f"{scales[0] * float(cfg.backbone.get('scale', 1.0)):g}"
    return f"{','.join(f'{s:g}' for s in scales)} {scale_combination(cfg, agg).label}"


def check_multiscale(cfg) -> None:
    """``multiscale``: scales that can work, a combination that exists, and a backbone that
    resizes by a ``scale`` (the deep extractors) when there is more than the one scale 1."""
    from hydra.utils import get_class

    from features.multiscale import check_scales
    try:
        scales = check_scales(list(cfg.multiscale.scales))
    except ParameterError as e:
        raise e.with_prefix("multiscale") from None
    agg = instantiate_group(cfg.aggregator, "aggregator") if "aggregator" in cfg else None
    scale_combination(cfg, agg)          # the extract app has no aggregator: p null is then 1
    if scales == [1.0]:
        return
    node = dict(plain(cfg.backbone))
    size = node.get("image_size")
    if max(scales) > MAX_SCALE:
        raise ConfigError(f"multiscale.scales={scales}: scales up to {MAX_SCALE} (a larger image "
                          "is backbone.image_size's job)")
    if isinstance(size, int) and node.get("resize", "max_side") != "none" and \
            size * min(scales) < cfg.min_image_side:
        raise ConfigError(f"multiscale.scales={scales}: scale {min(scales):g} makes "
                          f"backbone.image_size={size} images of {size * min(scales):.0f} px, "
                          f"below min_image_side={cfg.min_image_side}: drop that scale")
    accepted = set(inspect.signature(get_class(node["_target_"])).parameters)
    if "scale" not in accepted:
        raise ConfigError(f"multiscale.scales={scales}: the backbone ({node['_target_']}) cannot "
                          "resize by a scale; multi-scale extraction is for the deep extractors "
                          "(features.deep.DeepExtractor, features.vit.TokenExtractor). Use "
                          "multiscale=single")
    if node.get("scale", 1.0) != 1.0:
        raise ConfigError(f"backbone.scale={node['scale']} and multiscale.scales={scales}: set one "
                          "of them (multiscale.scales already resizes the image by each scale)")


def instantiate_checked(node, group: str):
    """``instantiate`` a group's config and run its ``validate()``; errors name ``group.key``."""
    obj = instantiate_group(node, group)
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except ParameterError as e:
            raise e.with_prefix(group) from None
    return obj


def build_codes(cfg: DictConfig):
    """The CompactCodes of ``codes`` (ParameterError naming ``codes.KEY``)."""
    from aggregators.codes import CompactCodes
    try:
        return CompactCodes(cfg.codes.kind, cfg.codes.bytes, cfg.codes.symmetric, cfg.seed,
                            cfg.codes.rescore)
    except ParameterError as e:
        raise e.with_prefix("codes") from None


def check_codes(cfg: DictConfig) -> None:
    """``codes``: a kind that exists, a size that fits ``postprocess.dim`` (when PCA fixes it),
    faiss importable for the codes it trains; a short list re-scored only of codes, and not
    after a re-ranking (which changes the descriptors the short list would be re-scored with)."""
    if cfg.codes.kind == "none":
        if cfg.codes.rescore:
            raise ConfigError(f"codes.rescore={cfg.codes.rescore}: re-scores the short list of a "
                              "search over compact codes, and codes.kind is none; set codes=pq "
                              "(opq, binary) or codes.rescore=0")
        return
    codes = build_codes(cfg)
    if codes.rescore and cfg.rerank.get("_target_", "").rsplit(".", 1)[-1] != "NoRerank":
        raise ConfigError(f"codes.rescore={codes.rescore} with a re-ranking: the short list is "
                          "re-scored with the float descriptors as post-processing left them, not "
                          "as the re-ranking would change them; use rerank=none with "
                          "codes.rescore, or codes.rescore=0")
    if cfg.postprocess.pca and cfg.postprocess.dim is not None:
        try:
            codes.check_dim(int(cfg.postprocess.dim))
        except ParameterError as e:
            raise ConfigError(f"{e.with_prefix('codes')}, with postprocess.dim={cfg.postprocess.dim}") from None
    if codes.kind in ("pq", "opq"):
        try:
            import faiss  # noqa: F401 -- its k-means trains the codebooks
        except ImportError:
            raise ConfigError(f"codes.kind={codes.kind}: needs faiss (pip install faiss-cpu)") from None


def check_metric_settings(cfg: DictConfig) -> None:
    """``map_at`` and ``recall_at``: lists of positive integers (each k named when it is not)."""
    for key in ("map_at", "recall_at"):
        for k in cfg[key]:
            check_values({key: k}, {key: Integer(note="the k of a metric")})


def check_schema(cfg: DictConfig, schema, path: str = "") -> None:
    """Keys a typed node does not declare (Hydra accepts ``+postprocess.dimm=3`` into a
    structured config): named, with the keys it has. Free-form groups (``_target_`` nodes) are
    checked by their classes."""
    import dataclasses
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in cfg:
        if key == "hydra":
            continue
        if key not in fields:
            where = path.rstrip(".") or "the config"
            raise ConfigError(f"{path}{key}: {where} has no key {key!r}; its keys: {', '.join(sorted(fields))}")
        node = cfg[key]
        kind = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None
        if OmegaConf.is_dict(node) and dataclasses.is_dataclass(kind):
            check_schema(node, kind, f"{path}{key}.")


def check_run(cfg: DictConfig) -> None:
    """Everything ``deepagg-run`` can check before it touches data."""
    from experiments.config import RunConfig
    check_schema(cfg, RunConfig)
    check_execution(cfg)
    check_backbone(cfg.backbone)
    check_multiscale(cfg)
    from features.store import check_dataset_name
    check_dataset_name(str(cfg.dataset.name))
    instantiate_checked(cfg.aggregator, "aggregator")
    instantiate_checked(cfg.rerank, "rerank")
    post = cfg.postprocess
    check_values(post, POSTPROCESS, prefix="postprocess")
    if post.whiten and not post.pca:
        raise ConfigError("postprocess.whiten=true needs postprocess.pca=true (whitening is a PCA step)")
    if post.whitening == "learned" and not post.pca:
        raise ConfigError("postprocess.whitening=learned needs postprocess.pca=true (the learned "
                          "projection replaces PCA-whitening in the chain)")
    if post.whitening == "learned" and (not post.whiten or post.whiten_power != 0.5):
        raise ConfigError("postprocess.whitening=learned whitens by construction: leave "
                          "postprocess.whiten=true and postprocess.whiten_power=0.5 (PCA-whitening's "
                          f"keys; got whiten={post.whiten}, whiten_power={post.whiten_power})")
    check_values(cfg.store, {"local_features": OneOf(("keep", "discard"))}, prefix="store")
    check_values(cfg, RUN)
    check_metric_settings(cfg)
    check_codes(cfg)
    if cfg.search_backend == "faiss":
        try:
            import faiss  # noqa: F401 -- imported up front: a broken install is named before work
        except ImportError as e:
            import importlib.util
            what = ("is not installed: pip install faiss-cpu" if importlib.util.find_spec("faiss") is None
                    else f"is installed but does not import ({type(e).__name__}: {e}); reinstall it "
                         "(pip install --force-reinstall faiss-cpu)")
            raise ConfigError(f"search_backend=faiss: faiss {what}") from None
