"""One configuration end to end, as named stages (experiments/stages.py):

    dataset -> stored local features -> fitted aggregator -> fitted post-processing
            -> encoded database and queries (post-processed batch by batch)
            -> re-ranking -> search and metrics
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from benchmarks.base import RetrievalDataset
from experiments.adapters import build_dataset, dataset_config, plain
from benchmarks.evaluation import check_scorable
from benchmarks.search import ShortList
from benchmarks.errors import ConfigError, ParameterError
from experiments import stages
from experiments.validate import build_codes, instantiate_checked, scale_combination, scales_label
from features.multiscale import MultiScaleSource

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- what a run reads
def fit_sets_read(cfg: DictConfig, learns: bool) -> dict[str, str]:
    """{setting: dataset name} of the fitting sets this run reads: ``postprocess.fit_on`` when
    PCA is on or PQ / OPQ codes learn their codebooks, ``aggregator_fit_on`` when the aggregator
    learns."""
    out = {}
    if cfg.postprocess.pca or OmegaConf.select(cfg, "codes.kind", default="none") in ("pq", "opq"):
        out["postprocess.fit_on"] = cfg.postprocess.fit_on
    if learns:
        out["aggregator_fit_on"] = cfg.aggregator_fit_on
    return out


#: what each setting that names a fitting set uses it for, said when that set is missing
FIT_ROLES = {"postprocess.fit_on": "PCA-training set, postprocess.fit_on",
             "aggregator_fit_on": "codebook / GMM / anchor training set, aggregator_fit_on"}


def check_available(cfg: DictConfig, learns: bool, swept_datasets=()) -> None:
    """Stop before any work when a dataset this run (or a job of its sweep over
    ``swept_datasets``) will read, fitting sets included, or the backbone's weights are missing;
    list everything missing, the role of each dataset (test set, PCA-training set, codebook set)
    and how to get it or do without it."""
    from benchmarks.availability import missing_requirements
    from features.weights import missing_weights
    nodes: dict[str, object] = {}
    roles: dict[str, list[str]] = {}

    def add(node, role: str) -> None:
        nodes.setdefault(node.name, node)
        if role not in roles.setdefault(node.name, []):
            roles[node.name].append(role)

    jobs = [cfg]
    for name in swept_datasets:
        job = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
        job.dataset = dataset_config(name, cfg.data_root, key="dataset")
        jobs.append(job)
    fit_keys: dict[str, set[str]] = {}   # {fitting set: the settings that name it}
    for job in jobs:
        add(job.dataset, "test set")
        for key, name in fit_sets_read(job, learns).items():
            if name != job.dataset.name:
                add(dataset_config(name, cfg.data_root, key=key), FIT_ROLES[key])
                fit_keys.setdefault(name, set()).add(key)
    missing = list(dict.fromkeys(missing_requirements(
        [plain(n) for n in nodes.values()], {n: "; ".join(r) for n, r in roles.items()})))
    keys = sorted({k for n, ks in fit_keys.items() for k in ks
                   if any(line.startswith(f"dataset {n} (") for line in missing)})
    if keys:
        own = cfg.dataset.name
        missing.append("or learn on a set you have: " + "; ".join(
            f"{k}=demo_holdout (ships with deepagg) or {k}={own} (the test set's own images)"
            for k in keys))
    b = cfg.backbone
    source = "timm" if b.get("_target_") == "features.vit.TokenExtractor" else b.get("source")
    if source in ("torchvision", "timm"):
        line = missing_weights(source, b.name, b.weights)
        if line:
            missing.append(line)
    if missing:
        raise missing_files_error(missing, cfg.data_root)


def missing_files_error(missing: list[str], data_root: str) -> ConfigError:
    """The one error that lists everything missing (lines of ``missing_requirements``)."""
    where = (f" (benchmarks live under data_root={data_root}, or $DEEPAGG_DATA)"
             if any(line.startswith("dataset ") for line in missing) else "")
    return ConfigError(f"cannot run, files are missing{where}:\n  " + "\n  ".join(missing))


def check_metric_ks(cfg: DictConfig, n_images: int) -> None:
    """``map_at`` / ``recall_at``: each k at most the database size (a k past it would score a
    ranking longer than the database)."""
    for key in ("map_at", "recall_at"):
        too_large = [k for k in cfg[key] if k > n_images]
        if too_large:
            raise ConfigError(f"{key}={list(cfg[key])}: {too_large} larger than the database of "
                              f"{cfg.dataset.name} ({n_images} images); use k <= {n_images}")
    rescore = OmegaConf.select(cfg, "codes.rescore", default=0)
    if rescore > n_images:
        raise ConfigError(f"codes.rescore={rescore}: a short list longer than the database of "
                          f"{cfg.dataset.name} ({n_images} images); use codes.rescore <= {n_images}")


@contextmanager
def config_path(group: str):
    """Parameter errors raised inside name their config key: ``group.param``."""
    try:
        yield
    except ParameterError as e:
        raise e.with_prefix(group) from None


# ----------------------------------------------------------------------------- the run
@dataclass
class Evaluation:
    metrics: dict
    timings: dict
    dim: int
    topk: np.ndarray
    aps: np.ndarray
    fit_on: str
    aggregator_fit_on: str
    rerank: str
    dataset: RetrievalDataset
    queries: np.ndarray       # (n_q, D) final query descriptors, before re-ranking (decoded codes)
    database: np.ndarray      # (N, D) final database descriptors, before re-ranking (decoded codes)
    codes: str = "none"       # the compact codes searched ("pq 16 B"), "none" for float32
    bytes_per_image: int = 0  # what one database image's descriptor or code takes
    scales: str = "1"         # the scales and their combination (validate.scales_label)


def postprocess_chain(cfg: DictConfig):
    """[PowerNorm(alpha)] -> L2 -> [PCAWhitening or LearnedWhitening -> L2] from ``postprocess``."""
    from sklearn.pipeline import Pipeline

    from aggregators import L2, LearnedWhitening, PCAWhitening, PowerNorm
    steps = []
    if cfg.alpha is not None:
        steps.append(("power", PowerNorm(alpha=cfg.alpha)))
    steps.append(("l2", L2()))
    if cfg.pca and cfg.whitening == "learned":
        steps += [("learned_whitening", LearnedWhitening(dim=cfg.dim, shrinkage=cfg.shrinkage)),
                  ("l2_final", L2())]
    elif cfg.pca:
        steps += [("pca", PCAWhitening(dim=cfg.dim, whiten=cfg.whiten, whiten_power=cfg.whiten_power,
                                       shrinkage=cfg.shrinkage)), ("l2_final", L2())]
    return Pipeline(steps)


def postprocess_settings(cfg: DictConfig) -> dict:
    """The postprocess config as it keys the chain's fit: the keys at their neutral values
    (records.NEUTRAL_KEYS) left out, so fits cached before those keys existed are found."""
    from analysis.records import NEUTRAL_KEYS
    settings = OmegaConf.to_container(cfg.postprocess, resolve=True)
    return {k: v for k, v in settings.items()
            if not (("postprocess", k) in NEUTRAL_KEYS and v == NEUTRAL_KEYS[("postprocess", k)])}


def check_matching_pairs(cfg: DictConfig, dataset: RetrievalDataset) -> None:
    """``postprocess.whitening=learned``: before any work, the fitting set's ground truth must
    give matching pairs, and (without shrinkage) at least ``dim`` independent ones. (That they
    span the raw descriptor's dimension is checked when the fit is made: the dimension is known
    once features exist; images without local features, dropped then, can only lower the count.)"""
    from benchmarks.evaluation import matching_groups
    post = cfg.postprocess
    if not (post.pca and post.whitening == "learned"):
        return
    if post.fit_on == dataset.name:      # the test set as fitting set: every image (not capped)
        labels = matching_groups(dataset)
    else:
        fit_ds = build_dataset(dataset_config(post.fit_on, cfg.data_root))
        labels = matching_groups(fit_ds)[stages.sample_indices(len(fit_ds), cfg.max_fit_images, cfg.seed)]
    from aggregators.postprocess import matching_pair_counts
    pairs, span = matching_pair_counts(labels)
    if pairs == 0:
        raise ConfigError(f"postprocess.whitening=learned: the fitting set postprocess.fit_on="
                          f"{post.fit_on} has no matching pairs in its ground truth; fit on a set "
                          "whose queries have positives, or use postprocess.whitening=pca")
    if post.shrinkage == 0 and post.dim is not None and span < post.dim:
        raise ConfigError(f"postprocess.whitening=learned: the {pairs} matching pairs of "
                          f"postprocess.fit_on={post.fit_on} span at most {span} dimensions, fewer "
                          f"than postprocess.dim={post.dim}; set postprocess.shrinkage > 0 (e.g. "
                          "0.1), lower the dimension, or fit on a larger set")


def evaluate_config(cfg: DictConfig, source, cache_root=None) -> Evaluation:
    """Run one configuration end to end; ``source`` serves stored features (FeatureSource),
    ``cache_root`` holds fitted aggregators and chains (None: no cache).

    With ``store.local_features=discard`` the database's local features are never stored: its
    images stream through the extractor, the fitted aggregator and the fitted chain, and only the
    final D-dimensional descriptors are kept (in the store, so a later run reads them).

    A MultiScaleSource (``multiscale.scales``) serves every scale; each is aggregated and the
    scales are combined (``multiscale.combine``) before post-processing."""
    watch = stages.Stopwatch()
    discard = cfg.store.local_features == "discard"
    combination = None
    with watch("total_s"):
        dataset = build_dataset(cfg.dataset)
        check_scorable(dataset)
        check_metric_ks(cfg, len(dataset))
        agg = instantiate_checked(cfg.aggregator, "aggregator")
        if isinstance(source, MultiScaleSource):
            combination = scale_combination(cfg, agg)
        reranker = instantiate_checked(cfg.rerank, "rerank")
        with config_path("rerank"):
            reranker.check_database_size(len(dataset))
        reads = fit_sets_read(cfg, agg.learns)
        check_matching_pairs(cfg, dataset)
        if discard and dataset.name in reads.values():
            raise ConfigError("store.local_features=discard cannot learn on the test dataset itself "
                              f"({dataset.name}): set postprocess.fit_on / aggregator_fit_on to "
                              "another dataset, or keep the local features")

        with watch("extract_s"):  # every extraction happens before the timed stages
            test = stages.load_test_features(source, dataset, database=not discard)
            fit_sets = {}
            for name in dict.fromkeys(reads.values()):
                if name == dataset.name:
                    fit_sets[name] = stages.test_set_as_fit_set(dataset, test)
                else:
                    fit_ds = build_dataset(dataset_config(name, cfg.data_root))
                    fit_sets[name] = stages.load_fit_set(source, fit_ds, cfg.max_fit_images, cfg.seed)

        with watch("fit_s"), config_path("aggregator"):
            agg, agg_key = stages.fit_aggregator(agg, fit_sets.get(reads.get("aggregator_fit_on", "")),
                                                 cache_root)
        agg.to(cfg.device)

        names = [im.name for im in dataset.images]
        chain = postprocess_chain(cfg.postprocess)
        pca_set = fit_sets.get(reads.get("postprocess.fit_on", ""))
        chain_key = None   # the chain's fit key (None when PCA learns on the test set itself)
        if pca_set is not None and pca_set.name == dataset.name:
            # PCA learned on the test set itself: every raw descriptor is needed first
            with watch("aggregate_s"):
                X_raw, x_empty = stages.encode(agg, test.database, names, cfg.empty_images,
                                               combination=combination)
            with watch("postprocess_s"), config_path("postprocess"):
                chain.fit(X_raw[~x_empty], pca_set.labels() if stages.needs_labels(chain) else None)
                X = chain.transform(X_raw)
            del X_raw
        else:
            settings = postprocess_settings(cfg)
            if combination is not None:   # the chain is fitted on combined descriptors
                settings["multiscale"] = OmegaConf.to_container(cfg.multiscale, resolve=True)
            with watch("postprocess_s"), config_path("postprocess"):
                # pca_set is read for PQ codebooks too; without PCA the chain learns nothing
                chain, chain_key = stages.fit_postprocess(
                    chain, agg, agg_key, settings, pca_set if cfg.postprocess.pca else None,
                    cache_root, combination)
            if discard:
                # multi-scale: each scale's aggregated rows are stored, keyed by the aggregator
                key = (f"{agg_key}|{cfg.store.dtype}|per-scale" if combination is not None
                       else f"{chain_key}|{cfg.store.dtype}")
                with watch("extract_s"):
                    X, x_empty = stages.stream_descriptors(
                        source, dataset, agg, chain, key, cfg.empty_images, cfg.store.dtype,
                        combination)
            else:
                with watch("aggregate_s"):   # post-processed batch by batch: only D-dim rows kept
                    X, x_empty = stages.encode(agg, test.database, names, cfg.empty_images,
                                               chain.transform, combination=combination)
        with watch("aggregate_s"):
            extra, extra_empty = np.zeros((0, X.shape[1]), np.float32), np.zeros(0, bool)
            if len(test.query_index):
                qnames = [dataset.queries[i].image.name for i in test.query_index]
                extra, extra_empty = stages.encode(agg, test.queries, qnames, cfg.empty_images,
                                                   chain.transform, combination=combination)
            X[x_empty], extra[extra_empty] = 0.0, 0.0   # no local features: matches nothing
            Q, _ = stages.query_matrix(dataset, X, x_empty, extra, extra_empty, test.query_index)
        codes, dim = None, int(X.shape[1])     # the descriptor's dimension, coded or not
        bytes_per_image, short_list = 4 * dim, None
        if OmegaConf.select(cfg, "codes.kind", default="none") != "none":
            with watch("codes_s"), config_path("codes"):
                on_test = pca_set is not None and pca_set.name == dataset.name
                codes = stages.fit_codes(build_codes(cfg), agg, chain, chain_key, pca_set,
                                         X[~x_empty], on_test, cache_root, combination)
                if codes.rescore:
                    short_list = ShortList(Q, X, codes.rescore)
                X, Q = codes.database(X), codes.queries(Q)
                X[x_empty] = 0.0
            bytes_per_image = codes.bytes

        with watch("search_s"), config_path("rerank"):
            metrics, result = stages.rank_and_score(dataset, Q, X, reranker, cfg.top_k, cfg.device,
                                                    cfg.search_backend, cfg.map_at, cfg.recall_at,
                                                    short_list, cache_root)
    aps = metrics.pop("aps")
    metrics = {k: v for k, v in metrics.items() if not k.endswith("/aps")}
    timings = watch.rounded()
    if not discard:   # with discard, extraction and encoding are one streamed pass
        timings["extract_s"] = round(source.seconds, 3)
    return Evaluation(metrics, timings, dim, result.indices, aps,
                      reads.get("postprocess.fit_on", "-"), reads.get("aggregator_fit_on", "-"),
                      reranker.label, dataset, Q, X, codes.label if codes is not None else "none",
                      bytes_per_image, scales_label(cfg, agg))
