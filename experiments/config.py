"""Structured config schema of ``deepagg-run``, ``deepagg-extract`` and ``deepagg-eval``: every
key the apps read, typed. A misspelt key is an error naming it.

Groups whose members are built with ``hydra.utils.instantiate`` (``backbone``, ``dataset``,
``aggregator``, ``rerank``) are free-form nodes with a ``_target_``: their keys are the
constructor arguments, and a wrong one fails before any work with the class and the key named.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from experiments.settings import ExecutionSettings, StoreConfig


@dataclass
class PostprocessConfig:
    """Chain after aggregation: [PowerNorm(alpha)] -> L2 -> [PCAWhitening(dim, whiten,
    whiten_power, shrinkage) or LearnedWhitening(dim, shrinkage) -> L2]."""
    fit_on: str = "demo_holdout"              # dataset config (conf/dataset/NAME.yaml) PCA is learned on
    alpha: Optional[float] = None             # signed power law before the first L2; null = off
    pca: bool = True                          # the learned projection step (PCA or learned whitening)
    dim: Optional[int] = 256                  # null = every component the fitting set allows
    whiten: bool = True
    whitening: str = "pca"                    # pca (unsupervised) | learned (supervised, from the
    #   matching pairs of fit_on's ground truth: Radenović et al.'s Lw)
    whiten_power: float = 0.5                 # PCA: components / eigenvalue^p (0.5 full, 0 plain PCA)
    shrinkage: float = 0.0                    # PCA: eigenvalues -> (1-b) l + b mean(l); learned: the
    #   pairs' covariance -> (1-b) C + b tr(C)/D I


@dataclass
class MultiscaleConfig:
    """Extraction at several scales, each aggregated, then combined (aggregators/scales.py)."""
    scales: list = field(default_factory=lambda: [1.0])   # image scale factors; [1]: single scale
    combine: str = "mean"                     # mean | sum | max (max: SuperGlobal's Scale-GeM)
    p: Optional[float] = 1.0                  # power of ``mean``; null: GeM's p for the GeM
    #   poolings (GeM, SuperGlobalPooling), else 1 (cirtorch's choice)


@dataclass
class CodesConfig:
    """Compact codes of the final descriptors, searched as such (aggregators/codes.py)."""
    kind: str = "none"                        # none | pq | opq | binary
    bytes: Optional[int] = None               # bytes per image (pq, opq: sub-quantisers; binary: bits / 8)
    symmetric: bool = False                   # code the queries too (default: asymmetric, float queries)
    rescore: int = 0                          # re-score the top `rescore` exactly with the floats (0: off)


@dataclass
class RunConfig(ExecutionSettings):
    backbone: Any = MISSING
    dataset: Any = MISSING
    aggregator: Any = MISSING
    rerank: Any = MISSING
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    multiscale: MultiscaleConfig = field(default_factory=MultiscaleConfig)
    codes: CodesConfig = field(default_factory=CodesConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    aggregator_fit_on: str = "${postprocess.fit_on}"  # dataset learned aggregators are fitted on
    max_fit_images: Optional[int] = None      # cap on fitting images (null: all)
    data_root: str = "data"                   # where dataset configs look for benchmark folders
    seed: int = 0
    skip_existing: bool = True                # skip configurations already in results.jsonl
    top_k: int = 10                           # ranked list length kept for reports
    map_at: list = field(default_factory=list)     # k of mAP@k (GLDv2: min(#positives, k) denominator)
    recall_at: list = field(default_factory=list)  # k of Recall@k (a positive in the top k)
    search_backend: str = "numpy"             # numpy | faiss (optional; re-ranking neighbour searches)
    empty_images: str = "error"               # images without local features in the test set:
    #   error (stop, naming them) | zero (a zero descriptor: it matches nothing). Fitting sets
    #   always skip such images (with a warning).
    experiment_name: str = "default"


@dataclass
class ExtractConfig(ExecutionSettings):
    """``deepagg-extract``: fill the store for datasets, shared by ``num_shards`` jobs."""
    backbone: Any = MISSING
    dataset: Any = MISSING
    store: StoreConfig = field(default_factory=StoreConfig)
    multiscale: MultiscaleConfig = field(default_factory=MultiscaleConfig)  # extracts every scale
    data_root: str = "data"
    fit_on: list = field(default_factory=list)   # also extract these datasets (PCA / codebook sets);
    #   conf/extract.yaml defaults it to the dataset's own fit_on
    shard: int = 0                            # this job's index among num_shards (a start hint)
    num_shards: int = 1


@dataclass
class EvalConfig:
    """``deepagg-eval``: score descriptors made elsewhere (or exported) on a benchmark."""
    dataset: Any = MISSING
    rerank: Any = MISSING
    descriptors: Optional[str] = None         # a folder (deepagg-export's), an .h5 / .hdf5 or .pt file
    rankings: Optional[str] = None            # or rankings: a .csv (GLDv2's id,images) or .npz
    similarity: Optional[str] = None          # or a (n_q, N) similarity: .npy or .npz
    method: Optional[str] = None              # the row's name in tables (null: the file's name)
    data_root: str = "data"
    device: str = "cpu"                       # where the search (and re-ranking) runs
    threads: Optional[int] = None             # torch threads; null = the cores this job may use
    top_k: int = 10
    map_at: list = field(default_factory=list)
    recall_at: list = field(default_factory=list)
    search_backend: str = "numpy"
    experiment_name: str = "eval"


def register() -> None:
    ConfigStore.instance().store(name="deepagg_schema", node=RunConfig)
    ConfigStore.instance().store(name="extract_schema", node=ExtractConfig)
    ConfigStore.instance().store(name="eval_schema", node=EvalConfig)
