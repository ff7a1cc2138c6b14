"""The stages of one evaluation, each a function that can be called (and tested) alone:

    load features -> fit aggregator -> fit post-processing -> encode -> rank and score

Holds no algorithm: every step calls features/, aggregators/ or benchmarks/.
"""
from __future__ import annotations

import functools
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from benchmarks.base import RetrievalDataset
from benchmarks.errors import ConfigError
from aggregators.scales import combine_scales
from features import LocalFeatures
from features.multiscale import MultiScaleFeatures, MultiScaleSource
from features.store import DescriptorRows

log = logging.getLogger(__name__)


@dataclass
class Stopwatch:
    """Seconds per named stage: ``with watch("fit_s"): ...`` adds to ``timings["fit_s"]``."""

    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t

    def rounded(self, digits: int = 3) -> dict[str, float]:
        return {k: round(v, digits) for k, v in self.timings.items()}


# ----------------------------------------------------------------------------- load features
@dataclass
class TestFeatures:
    """The local features a test dataset needs: its database, and the queries that need their
    own extraction (cropped, or outside the database), with their query indices."""

    database: Sequence[LocalFeatures]
    queries: Sequence[LocalFeatures]
    query_index: np.ndarray   # (m,) query index of each row of ``queries``


def load_test_features(source, dataset: RetrievalDataset, database: bool = True) -> TestFeatures:
    """Database (unless ``database=False``) and extra query features of ``dataset`` from the
    store, extracting what is missing."""
    database = source.features(dataset.name, dataset.images) if database else []
    extra = dataset.extra_query_images()
    queries: Sequence[LocalFeatures] = []
    if extra:
        queries = source.features(f"{dataset.name}_queries", [e[1] for e in extra],
                                  [e[2] for e in extra], what="query images")
    return TestFeatures(database, queries, np.array([e[0] for e in extra], dtype=np.int64))


@dataclass
class FitSet:
    """A fitting set: a string that identifies exactly its features (store entry + sample), for
    caching what is fitted on it, and the features (images without features dropped), read by
    ``read`` only when something is fitted: a run whose fits are cached never reads them."""

    name: str
    read: Callable[[], Sequence[LocalFeatures]]
    identity: str
    #: (n,) int64 matching groups of ``features`` (benchmarks.evaluation.matching_groups), for
    #: supervised whitening; None: not known
    read_labels: Callable[[], np.ndarray] | None = None

    @functools.cached_property
    def features(self) -> Sequence[LocalFeatures]:
        return self.read()

    def labels(self) -> np.ndarray | None:
        return self.read_labels() if self.read_labels is not None else None


def sample_indices(n: int, cap: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``cap`` of ``n`` images, drawn with ``seed`` (all when cap is None)."""
    if cap is None or cap >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def non_empty(feats: Sequence[LocalFeatures] | MultiScaleFeatures, dataset: str
              ) -> Sequence[LocalFeatures] | MultiScaleFeatures:
    """A fitting set without its images that have no local features (at some scale, for
    multi-scale ones); a warning says how many."""
    kept = non_empty_indices(feats)
    if len(kept) == len(feats):
        return feats
    log.warning("%s: %d of %d fitting images have no local features and are skipped",
                dataset, len(feats) - len(kept), len(feats))
    return _subset(feats, kept)


def non_empty_indices(feats) -> np.ndarray:
    """Indices of the images of a feature sequence that have local features (at every scale)."""
    return np.flatnonzero(_counts(feats) > 0)


def _subset(feats, indices: Sequence[int]):
    """The images ``indices`` of a feature sequence (their features read now)."""
    if isinstance(feats, MultiScaleFeatures):
        return feats.subset(indices)
    return [feats[int(i)] for i in indices]


def fitted_features(feats) -> Sequence[LocalFeatures]:
    """What an aggregator is fitted on: the features themselves, or every scale's of
    multi-scale ones (the features it will encode)."""
    return feats.flat() if isinstance(feats, MultiScaleFeatures) else feats


def load_fit_set(source, dataset: RetrievalDataset, cap: int | None, seed: int) -> FitSet:
    """The fitting images of ``dataset`` (at most ``cap``, seeded) from the store."""
    feats = source.features(dataset.name, list(dataset.fit_images()))
    idx = sample_indices(len(feats), cap, seed)

    def read() -> Sequence[LocalFeatures]:
        chosen = feats if len(idx) == len(feats) else _subset(feats, idx)
        return non_empty(chosen, dataset.name)

    def labels() -> np.ndarray:   # the groups of the images ``read`` keeps, in its order
        from benchmarks.evaluation import matching_groups
        return matching_groups(dataset)[idx][_counts(feats)[idx] > 0]
    identity = f"{_content(feats, dataset.name)}|{len(feats)}|cap={cap}|seed={seed}"
    return FitSet(dataset.name, read, identity, labels)


def _content(feats, name: str) -> str:
    """What identifies the features of a set: the store's content key (or the name for in-memory
    feature lists, which tests use)."""
    return feats.content_key() if hasattr(feats, "content_key") else name


def test_set_as_fit_set(dataset: RetrievalDataset, features: TestFeatures) -> FitSet:
    """The test database as a fitting set (only when a config asks for it)."""
    log.warning("fit_on=%s is the test dataset itself: learning on the test set", dataset.name)
    db = features.database

    def labels() -> np.ndarray:
        from benchmarks.evaluation import matching_groups
        return matching_groups(dataset)[non_empty_indices(db)]
    return FitSet(dataset.name, lambda: non_empty(db, dataset.name),
                  f"{_content(db, dataset.name)}|{len(db)}|test", labels)


# ----------------------------------------------------------------------------- fit
def fit_aggregator(agg, fit_set: FitSet | None, cache_root=None):
    """(the aggregator, fitted on ``fit_set`` when it learns, its fit key). Fits are cached in
    ``cache_root`` keyed by the aggregator's parameters (``get_params``) and the fit set's
    content. Where it encodes is set afterwards (``agg.to(device)``)."""
    from experiments import fitted
    key = fitted.fit_key(fitted.estimator_description(agg), fit_set.identity if fit_set else "-")
    if agg.learns:
        agg = fitted.cached_fit(cache_root, type(agg).__name__, key,
                                lambda: agg.fit(fitted_features(fit_set.features)),
                                expected=type(agg))
    return agg, key


def fit_postprocess(chain, agg, agg_key: str, settings: dict, pca_set: FitSet | None,
                    cache_root=None, combination=None):
    """(the post-processing chain fitted on ``pca_set`` encoded by ``agg`` (and its scales
    combined by ``combination``), or stateless without one; its fit key). ``settings``: the
    postprocess config (and the scale combination's), part of the key."""
    from experiments import fitted
    key = fitted.fit_key({"aggregator": agg_key, "postprocess": settings},
                         pca_set.identity if pca_set else "-")
    if pca_set is None:   # stateless steps only: they transform without fit (requires_fit=False)
        return chain, key
    chain = fitted.cached_fit(cache_root, "postprocess", key, lambda: chain.fit(
        encode(agg, pca_set.features, empty_images="zero", combination=combination)[0],
        pca_set.labels() if needs_labels(chain) else None), expected=type(chain))
    return chain, key


def needs_labels(chain) -> bool:
    """Whether a step of the post-processing ``chain`` learns from the fitting set's matching
    groups (``needs_labels``, supervised whitening): only then are they read."""
    return any(getattr(step, "needs_labels", False) for _, step in chain.steps)


def fit_codes(codes, agg, chain, chain_key: str | None, fit_set: FitSet | None,
              test_rows: np.ndarray, fit_on_test: bool = False, cache_root=None, combination=None):
    """``codes`` fitted on the final descriptors of ``fit_set`` (encoded by ``agg`` and
    ``chain``), cached like the other fits (keyed by the chain's fit and the codes' settings);
    on ``test_rows`` (the test set's own final descriptors, not cached) when PCA learned on the
    test set too (``fit_on_test``). Binary codes learn nothing: only their width is checked."""
    from experiments import fitted
    if codes.kind == "binary" or fit_on_test:
        return codes.fit(test_rows if fit_on_test else test_rows[:1])
    if fit_set is None:
        raise ConfigError(f"codes.kind={codes.kind}: its codebooks learn on postprocess.fit_on's set, "
                          "which this run does not read")
    key = fitted.fit_key({"chain": chain_key, "codes": codes.get_params()}, fit_set.identity)
    fit = fitted.cached_fit(cache_root, "codes", key, lambda: codes.fit(chain.transform(encode(
        agg, fit_set.features, empty_images="zero", combination=combination)[0])),
        expected=type(codes))
    fit.rescore = codes.rescore      # the search's setting, not in the key: a cached fit has its own
    return fit


# ----------------------------------------------------------------------------- encode
def encode(agg, feats: Sequence[LocalFeatures] | MultiScaleFeatures,
           names: Sequence[str] | None = None, empty_images: str = "error",
           then: Callable[[np.ndarray], np.ndarray] | None = None, batch: int = 128,
           combination=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) descriptors and the (N,) mask of images without local features, ``batch`` images at
    a time; ``then`` (post-processing) is applied to each batch, so only its output is kept.
    Multi-scale features are aggregated scale by scale and combined by ``combination``
    (aggregators.scales.ScaleCombination). Images without features stop the run
    (``empty_images=error``, naming them) or get a zero row (``zero``) that matches nothing."""
    multiscale = isinstance(feats, MultiScaleFeatures)
    if multiscale and combination is None:
        raise ValueError("encode: multi-scale features need a scale combination")
    counts = _counts(feats)
    empty = counts == 0
    _check_empty(empty, names, empty_images)
    out: np.ndarray | None = None
    for s in range(0, len(feats), batch):
        chunk = list(feats[s:s + batch])
        ok = [i for i in range(len(chunk)) if counts[s + i] > 0]
        if not ok:
            continue
        items = [chunk[i] for i in ok]
        rows = combine_scales(agg, items, combination) if multiscale else agg.transform(items)
        if then is not None:
            rows = then(rows)
        if out is None:
            out = np.zeros((len(feats), rows.shape[1]), np.float32)
        out[[s + i for i in ok]] = rows
    if out is None:
        raise ConfigError("no image of the set has local features: nothing to encode")
    return out, empty


def _counts(feats: Sequence[LocalFeatures]) -> np.ndarray:
    """(N,) local features per image: from a store's indexes, without reading the features
    (multi-scale: the fewest at any scale)."""
    if hasattr(feats, "counts"):
        return feats.counts()
    return np.array([f.n for f in feats], dtype=np.int64)


def _check_empty(empty: np.ndarray, names: Sequence[str] | None, empty_images: str) -> None:
    """Images without local features stop the run (``empty_images=error``), named."""
    if empty.any() and empty_images == "error":
        which = [names[i] if names is not None else str(i) for i in np.flatnonzero(empty)[:10]]
        raise ConfigError(f"{int(empty.sum())} image(s) have no local features (blank, tiny or "
                          f"textureless for this extractor): {', '.join(which)}; set "
                          "empty_images=zero to give them a zero descriptor that matches nothing")


def query_matrix(dataset: RetrievalDataset, database: np.ndarray, db_empty: np.ndarray,
                 extra: np.ndarray, extra_empty: np.ndarray, extra_index: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(n_q, D) query descriptors and their empty mask: a query that uses its database image's
    features takes that row; the others take their own rows of ``extra`` (in ``extra_index``)."""
    nq = len(dataset.queries)
    Q = np.zeros((nq, database.shape[1]), np.float32)
    empty = np.zeros(nq, bool)
    own = np.array([q.db_index if dataset.query_uses_db_features(q) else -1 for q in dataset.queries])
    uses_db = own >= 0
    Q[uses_db], empty[uses_db] = database[own[uses_db]], db_empty[own[uses_db]]
    if len(extra_index):
        Q[extra_index], empty[extra_index] = extra, extra_empty
    return Q, empty


class EncodedChunks:
    """A store ChunkSource of final descriptors: the local features of ``images`` (a
    features.source.ImageChunks) stream from the extractor, are rounded to the store's ``dtype``
    (as stored ones would be, so both modes encode the same numbers) and are encoded chunk by
    chunk by ``agg`` and ``chain`` (None: the aggregator's rows as they are, one scale of a
    multi-scale run); the local features are never stored."""

    def __init__(self, images, agg, chain, dtype: str):
        self.images, self.agg, self.chain, self.dtype = images, agg, chain, dtype
        self.names, self.identities, self.stamps = images.names, images.identities, images.stamps

    def content_hash(self, i: int) -> str:
        return self.images.content_hash(i)

    def produce(self, claims):
        for chunk, feats in self.images.produce(claims):
            yield chunk, self.encode(feats)

    def encode(self, feats: list[LocalFeatures]) -> DescriptorRows:
        """(n, D) descriptors of a chunk's images, zero rows where an image has no features."""
        feats = [LocalFeatures(f.descriptors.astype(self.dtype), f.positions, f.grid) for f in feats]
        empty = np.array([f.n == 0 for f in feats], bool)
        ok = np.flatnonzero(~empty)
        chain = self.chain.transform if self.chain is not None else (lambda rows: rows)
        if len(ok):
            rows = chain(self.agg.transform([feats[i] for i in ok]))
        else:   # the chain's width without any image to encode
            rows = chain(np.zeros((1, self.agg.output_dim(feats[0].dim)), np.float32))[:0]
        out = np.zeros((len(feats), rows.shape[1]), np.float32)
        out[ok] = rows
        return DescriptorRows(out, empty)


def stream_descriptors(source, dataset: RetrievalDataset, agg, chain, encoder_key: str,
                       empty_images: str = "error", dtype: str = "float16", combination=None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) final descriptors of the database without storing its local features, and the
    (N,) mask of images without local features: the images stream through the extractor,
    ``agg`` and ``chain`` (EncodedChunks), and only the descriptors are stored (float32, keyed by
    the extractor, the images and ``encoder_key``; resumable like any entry).

    A MultiScaleSource stores each scale's aggregated rows (``encoder_key`` then keys what
    aggregated them); they are combined by ``combination`` and post-processed chunk by chunk,
    so memory holds the (N, D) result and one chunk of each scale."""
    if isinstance(source, MultiScaleSource):
        per_scale = [s.descriptors(dataset.name, EncodedChunks(s.chunks(dataset.images), agg, None,
                                                              dtype), encoder_key)
                     for s in source.sources]
        X, empty = combined_descriptors(per_scale, combination, chain)
        names = [im.name for im in dataset.images]
    else:
        chunks = EncodedChunks(source.chunks(dataset.images), agg, chain, dtype)
        X, empty = source.descriptors(dataset.name, chunks, encoder_key).read()
        names = chunks.names
    _check_empty(empty, names, empty_images)
    if empty.all():   # as ``encode`` says for stored local features
        raise ConfigError("no image of the set has local features: nothing to encode")
    return X, empty


def combined_descriptors(per_scale, combination, chain) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) ``chain(combination(scale rows))`` of S stored per-scale descriptor entries read
    chunk by chunk in step, and the (N,) mask of images empty at some scale (zero rows)."""
    X = empty = None
    for parts in zip(*(p.row_chunks() for p in per_scale)):
        lo = parts[0][0]
        mask = np.any([m for _, _, m in parts], axis=0)
        ok = np.flatnonzero(~mask)
        rows = chain.transform(combination([r[ok] for _, r, _ in parts])) if len(ok) else None
        if X is None:
            width = rows.shape[1] if rows is not None else chain.transform(
                np.zeros((1, parts[0][1].shape[1]), np.float32)).shape[1]
            X, empty = np.zeros((len(per_scale[0]), width), np.float32), np.zeros(len(per_scale[0]), bool)
        if rows is not None:
            X[lo + ok] = rows
        empty[lo:lo + len(mask)] = mask
    if X is None:
        return np.zeros((0, 0), np.float32), np.zeros(0, bool)
    return X, empty


# ----------------------------------------------------------------------------- rank and score
def rank_and_score(dataset: RetrievalDataset, queries: np.ndarray, database: np.ndarray, reranker,
                   top_k: int, device: str = "cpu", backend: str = "numpy", map_at=(),
                   recall_at=(), rescore=None, cache_root=None):
    """(metrics, SearchResult): re-rank (never reading the ground truth), then search and score
    exactly (benchmarks.evaluation.evaluate; ``map_at`` / ``recall_at``: the k of mAP@k and
    Recall@k to add; ``rescore``: a ``benchmarks.search.ShortList`` re-scored exactly). A
    re-ranker that ranks (diffusion, k-reciprocal, SuperGlobal) is scored on its own ranking; the
    database graph it reads is cached in ``cache_root`` (keyed by the database's bytes)."""
    from benchmarks.evaluation import evaluate, evaluate_search
    from benchmarks.rerank import query_db_indices
    top_k, own = min(top_k, len(dataset)), query_db_indices(dataset)
    if not reranker.ranks:
        Q, X = reranker.rerank(queries, database, own, device=device, backend=backend)
        return evaluate(dataset, Q, X, top_k=top_k, map_at=tuple(map_at),
                        recall_at=tuple(recall_at), device=device, rescore=rescore)
    graph = database_graph(database, reranker.graph_depth, cache_root) if reranker.graph_depth else None
    return evaluate_search(dataset, lambda k, track: reranker.rank(
        queries, database, own, k, track=track, graph=graph, device=device, backend=backend),
        top_k, map_at=tuple(map_at), recall_at=tuple(recall_at))


def database_graph(database: np.ndarray, depth: int, cache_root=None):
    """The k-NN graph (``benchmarks.neighbours``) of ``depth`` of the (N, D) final descriptors,
    cached in ``cache_root`` under the sha1 of their bytes (any change of the run that changes
    them builds another)."""
    import hashlib

    from benchmarks.neighbours import NeighbourGraph, neighbour_graph
    from experiments import fitted
    x = np.ascontiguousarray(database, dtype=np.float32)
    digest = hashlib.sha1(x.data).hexdigest()
    key = fitted.fit_key({"graph": depth, "shape": list(x.shape)}, digest)
    return fitted.cached_fit(cache_root, "graph", key, lambda: neighbour_graph(x, depth),
                             expected=NeighbourGraph)
