"""Wiring: dataset -> stored local features -> aggregator -> post-processing -> search -> metrics.

Holds no algorithm of its own; every step is a call into features/, aggregators/ or benchmarks/.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sklearn.pipeline import Pipeline

from aggregators import L2, PCAWhitening, PowerNorm
from aggregators.base import Aggregator
from benchmarks import RetrievalDataset, evaluate, search
from benchmarks.base import ImageRef
from features import LocalFeatures
from features.extractor import build_extractor, extractor_identity
from features.store import FeatureStore, StoredFeatures
from features.weights import missing_weights

log = logging.getLogger(__name__)
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class ConfigError(ValueError):
    """A setting that cannot work; the message names the key and what to do."""


# ----------------------------------------------------------------------------- datasets
def dataset_config(name: str, root: DictConfig) -> DictConfig:
    """``conf/dataset/NAME.yaml`` resolved against the run's config (for ``fit_on``)."""
    path = CONF_DIR / "dataset" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
        raise ConfigError(f"fit_on={name!r}: no dataset config {path}; known datasets: {', '.join(known)}")
    node = OmegaConf.load(path)
    merged = OmegaConf.merge({"data_root": root.data_root}, {"_dataset_": node})
    return merged._dataset_


def build_dataset(cfg: DictConfig) -> RetrievalDataset:
    """Instantiate a dataset config (its ``fit_on`` key, if any, names a PCA set, not an argument)."""
    node = OmegaConf.to_container(cfg, resolve=True)
    node.pop("fit_on", None)
    try:
        return instantiate(node)
    except Exception as e:  # Hydra wraps loader errors; surface the loader's own message
        cause = e.__cause__ or e
        raise ConfigError(f"dataset {node.get('name', node.get('_target_'))}: {cause}") from e


def check_available(cfg: DictConfig, other_datasets: Sequence[str] = ()) -> None:
    """Stop before any work when a dataset of this run (or of its sweep, ``other_datasets``) or a
    fit_on set is not on disk, listing everything that is missing and how to get it."""
    from benchmarks.availability import missing_requirements
    nodes = [cfg.dataset] + [dataset_config(n, cfg) for n in other_datasets]
    names = {cfg.postprocess.fit_on, cfg.aggregator_fit_on}
    names |= {str(n.fit_on) for n in nodes if "fit_on" in n and n.fit_on is not None}
    nodes += [dataset_config(n, cfg) for n in sorted(names) if n != cfg.dataset.name]
    missing = list(dict.fromkeys(missing_requirements(nodes)))
    b = cfg.backbone
    no_weights = missing_weights(b.source, b.name, b.weights) if b.source != "sift" else None
    if missing or no_weights:
        raise ConfigError("cannot run, files are missing (benchmarks live under data_root=... or "
                          "$DEEPAGG_DATA):\n  " + "\n  ".join(missing + [no_weights] * bool(no_weights)))


# ----------------------------------------------------------------------------- features
class FeatureSource:
    """Serves stored local features of image lists under the ``backbone`` of ``cfg``, building the
    extractor only when something has to be extracted; ``seconds`` accumulates the time spent."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        st = cfg.store
        self.store = FeatureStore(st.root, st.dtype, st.chunk_size)
        self.identity = extractor_identity(cfg.backbone)
        self.seconds = 0.0
        self._extractor = None

    def extractor(self):
        if self._extractor is None:
            self._extractor = build_extractor(self.cfg.backbone, device=self.cfg.device)
            log.info("extractor: %s", getattr(self._extractor, "weights_provenance", "sift"))
        return self._extractor

    def features(self, dataset: str, images: Sequence[ImageRef],
                 boxes: Sequence[tuple | None] | None = None, what: str = "images") -> StoredFeatures:
        """Features of ``images``, each cropped to its box (pixels, checked by the loader) if any."""
        boxes = list(boxes) if boxes is not None else [None] * len(images)
        identities = [im.identity() + (f"|box={b}" if b is not None else "") for im, b in zip(images, boxes)]

        def load(i: int):
            img, b = images[i].load(), boxes[i]
            if b is None:
                return img
            x1, y1, x2, y2 = b
            return img.crop((int(x1), int(y1), int(np.ceil(x2)), int(np.ceil(y2))))

        t = time.perf_counter()
        out = self.store.get(dataset, [im.name for im in images], identities, self.identity, load,
                             self.extractor, batch_size=self.cfg.batch_size,
                             num_workers=self.cfg.num_workers, what=what)
        self.seconds += time.perf_counter() - t
        return out


# ----------------------------------------------------------------------------- stages
EMPTY_POLICIES = ("error", "zero")


def aggregate(agg: Aggregator, feats: Sequence[LocalFeatures], names: Sequence[str] | None = None,
              empty_images: str = "error", batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) descriptors and an (N,) mask of images without local features, streamed over the
    stored features ``batch`` images at a time. Such images stop the run (``empty_images=error``,
    naming them) or get a zero row (``zero``)."""
    if empty_images not in EMPTY_POLICIES:
        raise ConfigError(f"empty_images={empty_images!r}: expected one of {EMPTY_POLICIES}")
    out = np.zeros((len(feats), agg.dim), np.float32)
    empty = np.zeros(len(feats), bool)
    for s in range(0, len(feats), batch):
        chunk = list(feats[s:s + batch])
        ok = [i for i, f in enumerate(chunk) if f.n > 0]
        empty[[s + i for i in range(len(chunk)) if chunk[i].n == 0]] = True
        if ok:
            out[[s + i for i in ok]] = agg.transform([chunk[i] for i in ok])
    if empty.any() and empty_images == "error":
        which = [names[i] if names is not None else str(i) for i in np.flatnonzero(empty)[:10]]
        raise ConfigError(f"{int(empty.sum())} image(s) have no local features (blank, tiny or "
                          f"textureless for this extractor): {', '.join(which)}; set "
                          "empty_images=zero to give them a zero descriptor that matches nothing")
    return out, empty


def non_empty(feats: Sequence[LocalFeatures], dataset: str) -> Sequence[LocalFeatures]:
    """A fitting set without its images that have no local features (a warning says how many)."""
    kept = [f for f in feats if f.n > 0]
    if len(kept) < len(feats):
        log.warning("%s: %d of %d fitting images have no local features and are skipped",
                    dataset, len(feats) - len(kept), len(feats))
    return feats if len(kept) == len(feats) else kept


def postprocess_chain(cfg: DictConfig) -> Pipeline:
    """[PowerNorm(alpha)] -> L2 -> [PCAWhitening(dim, whiten) -> L2] from ``postprocess``."""
    steps = []
    if cfg.alpha is not None:
        steps.append(("power", PowerNorm(alpha=cfg.alpha)))
    steps.append(("l2", L2()))
    if cfg.pca:
        steps += [("pca", PCAWhitening(dim=cfg.dim, whiten=cfg.whiten)), ("l2_final", L2())]
    return Pipeline(steps)


def sample_indices(n: int, cap: int | None, seed: int) -> np.ndarray:
    if cap is None or cap >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


@dataclass
class Evaluation:
    metrics: dict
    timings: dict
    dim: int
    rankings: np.ndarray
    aps: np.ndarray
    fit_on: str
    aggregator_fit_on: str
    dataset: RetrievalDataset


def evaluate_config(cfg: DictConfig) -> Evaluation:
    """Run one configuration end to end (features come from the store when present)."""
    t0 = time.perf_counter()
    dataset = build_dataset(cfg.dataset)
    source = FeatureSource(cfg)
    db = source.features(dataset.name, dataset.images)
    extra = dataset.extra_query_images()
    qfeats_extra = source.features(f"{dataset.name}_queries", [e[1] for e in extra],
                                   [e[2] for e in extra], what="query images") if extra else []

    agg: Aggregator = instantiate(cfg.aggregator)
    learns = agg.learns
    agg_fit_on = cfg.aggregator_fit_on if learns else "-"
    fit_on = cfg.postprocess.fit_on if cfg.postprocess.pca else "-"
    fit_sets: dict[str, Sequence[LocalFeatures]] = {}
    for name in {agg_fit_on, fit_on} - {"-"}:   # every extraction happens before the timed stages
        if name == cfg.dataset.name:
            log.warning("fit_on=%s is the test dataset itself: learning on the test set", name)
            fit_sets[name] = non_empty(db, name)
        else:
            fit_ds = build_dataset(dataset_config(name, cfg))
            fset = source.features(fit_ds.name, list(fit_ds.fit_images()))
            idx = sample_indices(len(fset), cfg.max_fit_images, cfg.seed)
            fit_sets[name] = non_empty(fset if len(idx) == len(fset) else [fset[i] for i in idx],
                                       fit_ds.name)

    t = time.perf_counter()
    agg.fit(fit_sets[agg_fit_on] if learns else [next(f for f in db if f.n > 0)])
    fit_s = time.perf_counter() - t

    t = time.perf_counter()
    X, x_empty = aggregate(agg, db, [im.name for im in dataset.images], cfg.empty_images)
    qx, q_empty = {}, {}
    if extra:
        qe, qe_empty = aggregate(agg, qfeats_extra, [e[1].name for e in extra], cfg.empty_images)
        qx = dict(zip((e[0] for e in extra), qe))
        q_empty = dict(zip((e[0] for e in extra), qe_empty))
    Q = np.stack([qx[i] if i in qx else X[q.db_index] for i, q in enumerate(dataset.queries)])
    Q_empty = np.array([q_empty[i] if i in q_empty else x_empty[q.db_index]
                        for i, q in enumerate(dataset.queries)], dtype=bool)
    aggregate_s = time.perf_counter() - t

    t = time.perf_counter()
    chain = postprocess_chain(cfg.postprocess)
    pca_fit_on_db = not cfg.postprocess.pca or fit_sets[fit_on] is db  # stateless chains fit on X
    chain.fit(X[~x_empty] if pca_fit_on_db else aggregate(agg, fit_sets[fit_on])[0])
    Xp, Qp = chain.transform(X), chain.transform(Q)
    Xp[x_empty], Qp[Q_empty] = 0.0, 0.0   # no local features: a descriptor that matches nothing
    postprocess_s = time.perf_counter() - t

    t = time.perf_counter()
    rankings, _ = search(Qp, Xp)
    metrics = evaluate(dataset, rankings)
    search_s = time.perf_counter() - t
    aps = metrics.pop("aps")
    metrics = {k: v for k, v in metrics.items() if not k.endswith("/aps")}
    timings = {"extract_s": round(source.seconds, 3), "fit_s": round(fit_s, 3),
               "aggregate_s": round(aggregate_s, 3), "postprocess_s": round(postprocess_s, 3),
               "search_s": round(search_s, 3), "total_s": round(time.perf_counter() - t0, 3)}
    return Evaluation(metrics, timings, int(Xp.shape[1]), rankings, aps, fit_on, agg_fit_on, dataset)
