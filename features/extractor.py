"""What every local-feature extractor provides, and its store identity.

A ``backbone`` config (a plain mapping here) names its class with ``_target_``
(features.deep.DeepExtractor, features.sift.SiftExtractor, or your own) and lists its constructor
arguments; ``device``, ``precision`` and ``decode`` come from the run. The apps build extractors
from configs (experiments/adapters.py).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Protocol, Sequence

from PIL import Image

from features.local_features import LocalFeatures


class Extractor(Protocol):
    """Images -> LocalFeatures, split for the input pipeline (features/input_pipeline.py).

    kind:       a short name of the feature type ("deep", "sift") for records and tables.
    preparer(): a picklable callable, image (PIL, or an item with ``load()``) -> prepared item;
                runs in the loader's worker processes.
    batch_key(prepared): prepared items with equal keys may share one ``run`` call.
    run(batch): prepared items -> their LocalFeatures, in order.
    __call__(images): the whole chain for a list of PIL images (scripts, tests).
    """

    kind: str

    def preparer(self) -> Callable[[Any], Any]: ...

    def batch_key(self, prepared: Any) -> Hashable: ...

    def run(self, batch: Sequence[Any]) -> list[LocalFeatures]: ...

    def __call__(self, images: Sequence[Image.Image]) -> list[LocalFeatures]: ...


#: run settings that change features; each enters the store identity only when it differs from
#: this value, which reproduces the features of versions that did not have the setting
RUN_SETTINGS = {"precision": "fp32", "decode": "pil"}
#: backbone keys left out of the store identity at this value (the features of versions without
#: the key): ``scale`` 1 is the image as the resize policy gives it
NEUTRAL_KEYS = {"scale": 1.0}
#: ``_target_`` -> the ``kind`` the store identity of earlier versions used (keeps their stores)
_IDENTITY_KINDS = {"features.deep.DeepExtractor": "deep", "features.sift.SiftExtractor": "sift",
                   "features.vit.TokenExtractor": "tokens"}


def extractor_identity(cfg, **run_settings) -> dict:
    """What determines the features of a ``backbone`` config, known without building the model:
    every key of the resolved config but ``_target_`` (which becomes ``kind``) and those of
    ``NEUTRAL_KEYS`` at their neutral value, plus the run settings of ``RUN_SETTINGS`` that
    differ from their defaults."""
    node = {k: v for k, v in dict(cfg).items()
            if not (k in NEUTRAL_KEYS and v == NEUTRAL_KEYS[k])}
    target = node.pop("_target_", None)
    if target is None:
        raise ValueError("a backbone config needs a _target_ (e.g. features.deep.DeepExtractor)")
    identity = {"kind": _IDENTITY_KINDS.get(target, target), **node}
    for key, value in run_settings.items():
        if key not in RUN_SETTINGS:
            raise ValueError(f"unknown run setting {key!r} for the extractor identity")
        if value != RUN_SETTINGS[key]:
            identity[key] = value
    return identity


def feature_kind(cfg) -> str:
    """"deep", "sift", or the ``_target_`` of another extractor: without importing it."""
    target = dict(cfg).get("_target_", "")
    return _IDENTITY_KINDS.get(target, target)
