"""``deepagg-similarity``: the deep-vs-SIFT similarity study as a Hydra app (conf/similarity.yaml).

Reads local features of every extractor in ``extractors`` from the feature store (extracting them
once when missing), pairs them (analysis.similarity_study) and writes into the Hydra run directory:
``similarity.png`` (local-feature and sum-pooled image pairs), ``similarity_whitened.png`` (the
same after PCA-whitening, when enabled), ``similarity.md`` / ``similarity.csv`` (separation table)
and ``samples.npz`` (every similarity, keyed ``level/features/kind/matching|non_matching``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import hydra
import numpy as np
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig

from aggregators.sampling import take_rows
from benchmarks.errors import ConfigError
from experiments.adapters import build_dataset, dataset_config, feature_source
from experiments.cli import hydra_entry, launcher_cpus, report_errors
from experiments.settings import ExecutionSettings, StoreConfig

log = logging.getLogger("deepagg")


@dataclass
class PairsConfig:
    homography: str = "auto"            # known (dataset meta) | ransac (stored SIFT) | auto
    ransac_features: str = "sift"       # the extractor (key of ``extractors``) RANSAC matches
    pixel_tolerance: float = 3.0        # SIFT: mapped keypoints this close (pixels) correspond
    unambiguous: bool = True            # SIFT: skip keypoints with a neighbour within tolerance
    max_image_pairs: Optional[int] = None    # cap on matching image pairs (random, seeded)
    max_feature_pairs: Optional[int] = None  # cap on matching feature pairs per extractor
    n_unrelated: int = 10000            # pool of non-matching image pairs to sample from
    ransac_ratio: float = 0.8           # Lowe's ratio test
    ransac_reprojection_px: float = 4.0
    ransac_min_inliers: int = 15


@dataclass
class WhiteningConfig:
    enabled: bool = True
    fit_on: str = "demo_holdout"        # dataset config (conf/dataset/NAME.yaml) PCA is learned on
    dim: Optional[int] = 128            # kept components (null: all the fitting set allows)
    max_features: int = 50000           # local features sampled from fit_on for local whitening


@dataclass
class FigureConfig:
    formats: List[str] = field(default_factory=lambda: ["png"])  # png, pdf, svg
    bins: int = 60


@dataclass
class SimilarityConfig(ExecutionSettings):
    extractors: Dict[str, Any] = field(default_factory=dict)   # backbone configs (_target_ + args)
    dataset: Any = MISSING
    pairs: PairsConfig = field(default_factory=PairsConfig)
    whitening: WhiteningConfig = field(default_factory=WhiteningConfig)
    figure: FigureConfig = field(default_factory=FigureConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    data_root: str = "data"
    seed: int = 0


ConfigStore.instance().store(name="similarity_schema", node=SimilarityConfig)


def image_sizes(dataset) -> np.ndarray:
    """(N, 2) pixel (w, h) of every database image, upright, as the extractors saw it before
    resizing (``ImageRef.size``; the demo's known view size without rendering its views)."""
    if "view_size" in dataset.meta:
        return np.tile(np.asarray(dataset.meta["view_size"], np.int64), (len(dataset.images), 1))
    return np.asarray([ref.size() for ref in dataset.images], np.int64).reshape(-1, 2)


def sample_local(features, n: int, rng: np.random.Generator) -> np.ndarray:
    """(<= n, d) local descriptors drawn uniformly from a list of LocalFeatures, from the study's
    own random stream (one draw even when all fit, which keeps the study's samples as they were)."""
    blocks = [f.descriptors for f in features]
    total = sum(len(b) for b in blocks)
    return take_rows(blocks, np.sort(rng.choice(total, min(n, total), replace=False)))


def image_pairs(cfg: DictConfig, dataset, feats: dict, rng: np.random.Generator):
    """The study's ImagePairs, homographies known or estimated (``pairs.homography``), and
    whether they were estimated."""
    from analysis import similarity_study as study
    pairs = study.dataset_pairs(dataset, image_sizes(dataset), rng, cfg.pairs.max_image_pairs,
                                cfg.pairs.n_unrelated)
    mode = cfg.pairs.homography
    if mode not in ("auto", "known", "ransac"):
        raise ConfigError(f"pairs.homography={mode!r}: expected auto, known or ransac")
    if mode == "ransac":
        pairs = replace(pairs, homographies=np.full_like(pairs.homographies, np.nan))
    if not np.isnan(pairs.homographies).any():
        return pairs, False
    if mode == "known":
        raise ConfigError(f"{dataset.name} has no known homographies; use pairs.homography=ransac")
    if cfg.pairs.ransac_features not in feats:
        raise ConfigError(f"pairs.ransac_features={cfg.pairs.ransac_features!r} is not a key of "
                         f"extractors ({', '.join(feats)})")
    verified = study.estimate_missing(pairs, feats[cfg.pairs.ransac_features], cfg.pairs.ransac_ratio,
                                      cfg.pairs.ransac_reprojection_px, cfg.pairs.ransac_min_inliers)
    log.info("RANSAC verified %d of %d matching image pairs", len(verified.matching), len(pairs.matching))
    return verified, True


def collect_samples(cfg: DictConfig, sources: dict, feats: dict, pairs,
                    rng: np.random.Generator, holdout=None) -> dict:
    """{(level, extractor, kind): (matching, non-matching)} for every extractor; the whitened
    kinds when a ``holdout`` dataset to fit PCA-whitening on is given."""
    from analysis import similarity_study as study
    samples: dict = {}
    for k, f in feats.items():
        local_w = image_w = None
        if holdout is not None:
            fit = sources[k].features(holdout.name, list(holdout.fit_images()))
            local_w = study.fit_whitening(sample_local(fit, cfg.whitening.max_features, rng),
                                          cfg.whitening.dim)
            image_w = study.fit_whitening(study.sum_pooled(fit), cfg.whitening.dim)
        local = study.local_samples(f, pairs, cfg.pairs.pixel_tolerance, rng, local_w,
                                    cfg.pairs.max_feature_pairs, cfg.pairs.unambiguous)
        image = study.image_samples(study.sum_pooled(f), pairs, image_w)
        samples.update({("local", k, kind): s for kind, s in local.items()})
        samples.update({("image", k, kind): s for kind, s in image.items()})
    return samples


def run(cfg: DictConfig, out_dir: Path) -> dict:
    """The whole study, outputs written into ``out_dir``; returns the separation ``table``, the
    ``samples``, the image ``pairs`` and the ``figures``."""
    from analysis.similarity_figure import similarity_figure
    from analysis.similarity_study import separation_table

    rng = np.random.default_rng(cfg.seed)
    dataset = build_dataset(cfg.dataset)
    sources = {k: feature_source(cfg, b, launcher_cpus()) for k, b in cfg.extractors.items()}
    feats = {k: s.features(dataset.name, dataset.images) for k, s in sources.items()}
    pairs, estimated = image_pairs(cfg, dataset, feats, rng)
    log.info("%s: %d matching image pairs, %d unrelated pairs in the pool", dataset.name,
             len(pairs.matching), len(pairs.unrelated))
    holdout = (build_dataset(dataset_config(cfg.whitening.fit_on, cfg.data_root, "whitening.fit_on"))
               if cfg.whitening.enabled else None)
    samples = collect_samples(cfg, sources, feats, pairs, rng, holdout)

    table = separation_table(samples)
    table.to_csv(out_dir / "similarity.csv", index=False)
    (out_dir / "similarity.md").write_text(table.to_markdown(index=False, floatfmt=".3f") + "\n")
    np.savez_compressed(out_dir / "samples.npz", **{
        f"{'/'.join(key)}/{side}": v for key, (m, n) in samples.items()
        for side, v in (("matching", m), ("non_matching", n))})

    columns = {k: column_title(k, b) for k, b in cfg.extractors.items()}
    note = (f"{dataset.name}: {len(pairs.matching)} matching image pairs, homographies "
            f"{'from RANSAC on ' + cfg.pairs.ransac_features if estimated else 'known'}; "
            f"non-matching pairs: random features of unrelated images (seed {cfg.seed})")
    plain = [("local", "cosine"), ("image", "cosine")]
    figures = {"similarity": similarity_figure(samples, plain, out_dir / "similarity", columns,
                                               cfg.figure.bins, note, cfg.figure.formats)}
    if holdout is not None:
        whitened = [("local", "cosine_whitened"), ("image", "cosine_whitened")]
        note += f"; PCA-whitening ({cfg.whitening.dim} dims) fitted on {holdout.name}"
        figures["similarity_whitened"] = similarity_figure(
            samples, whitened, out_dir / "similarity_whitened", columns, cfg.figure.bins, note,
            cfg.figure.formats)
    return {"table": table, "samples": samples, "pairs": pairs, "figures": figures}


def column_title(key: str, backbone: DictConfig) -> str:
    from features.extractor import feature_kind
    if feature_kind(backbone) == "sift":
        return f"{key}: {'RootSIFT' if backbone.root_sift else 'SIFT'}"
    if "name" in backbone and "layer" in backbone:
        return f"{key}: {backbone.name} {backbone.layer}"
    return key


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="similarity")
def _app(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    result = report_errors(lambda: run(cfg, out_dir))
    print(result["table"].to_markdown(index=False, floatfmt=".3f"))
    log.info("outputs in %s", out_dir)


main = hydra_entry(_app)


if __name__ == "__main__":
    main()
