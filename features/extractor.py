"""What every local-feature extractor provides, and the factory that builds one from config."""
from __future__ import annotations

from typing import Protocol, Sequence

from PIL import Image

from features.local_features import LocalFeatures


class Extractor(Protocol):
    """Images -> LocalFeatures. ``config()`` returns every setting that determines the features
    (it is hashed into the feature-store key, so it must change when the output can change)."""

    def config(self) -> dict: ...

    def __call__(self, images: Sequence[Image.Image]) -> list[LocalFeatures]: ...


def build_extractor(cfg, device: str = "cpu") -> Extractor:
    """Build the extractor of a ``backbone`` config (experiments/config.py BackboneConfig)."""
    if cfg.source == "sift":
        from features.sift import SiftExtractor
        return SiftExtractor(max_keypoints=cfg.max_keypoints, root_sift=cfg.root_sift,
                             resize=cfg.resize, image_size=cfg.image_size,
                             interpolation=cfg.interpolation,
                             contrast_threshold=cfg.contrast_threshold)
    from features.deep import DeepExtractor
    return DeepExtractor.from_config(cfg, device=device)
