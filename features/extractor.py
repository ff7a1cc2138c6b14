"""What every local-feature extractor provides, and the factory that builds one from config."""
from __future__ import annotations

from typing import Protocol, Sequence

from PIL import Image

from features.local_features import LocalFeatures


class Extractor(Protocol):
    """Images -> LocalFeatures, in order."""

    def __call__(self, images: Sequence[Image.Image]) -> list[LocalFeatures]: ...


#: backbone config keys that determine the features, by kind (the feature-store key hashes them)
IDENTITY_KEYS = {
    "deep": ("source", "name", "layer", "relu", "weights", "resize", "image_size", "interpolation",
             "mean", "std", "ceil_mode"),
    "sift": ("max_keypoints", "root_sift", "contrast_threshold", "resize", "image_size",
             "interpolation"),
}


def extractor_identity(cfg) -> dict:
    """The settings of a ``backbone`` config that determine its features, known without building
    the model (so stored features are found without loading any weights)."""
    from omegaconf import OmegaConf
    node = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    kind = "sift" if node["source"] == "sift" else "deep"
    return {"kind": kind, **{k: node[k] for k in IDENTITY_KEYS[kind]}}


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
