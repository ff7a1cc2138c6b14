"""The input pipeline of extraction: decode, resize (and, for SIFT, the whole extraction) in
``torch.utils.data.DataLoader`` worker processes, then equal-shape images bucketed into full
batches for the extractor's ``run`` on the device.

Images arrive in stream order from the chunks the store hands out (``claims``); a chunk is
yielded as soon as all its images have features, so stored order never depends on bucketing.
Buckets span chunk boundaries: a chunk's partly filled buckets are run only once ``lookahead``
more images have arrived after its last one (or the stream ends), so portrait and landscape
images of ``resize=max_side`` / ``none`` still fill whole batches.

A worker that cannot read an image reports the error instead of raising, so the main process
raises it with the file named (and no chunk already yielded is lost).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator, Sequence

from benchmarks import errors as project_errors
from benchmarks.errors import DeepaggError
from features.local_features import LocalFeatures

log = logging.getLogger(__name__)

class PreparedImages:
    """Map-style dataset: index i -> (i, prepare(items[i]), None), or (i, None, (error type,
    message)) when the item cannot be read. Picklable when ``items`` and ``prepare`` are."""

    def __init__(self, items: Sequence[Any], prepare: Callable[[Any], Any]):
        self.items, self.prepare = items, prepare

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        try:
            return i, self.prepare(self.items[i]), None
        except DeepaggError as e:
            return i, None, (type(e).__name__, str(e))


class ClaimedIndices:
    """Sampler over the images of the chunks ``claims`` yields, claimed lazily (the loader asks
    for indices only as fast as it prefetches); ``claimed`` lists the chunks handed out so far."""

    def __init__(self, claims: Iterable[Any]):
        self._claims = iter(claims)
        self.claimed: list[Any] = []

    def __iter__(self) -> Iterator[int]:
        for spec in self._claims:
            self.claimed.append(spec)
            yield from range(spec.lo, spec.hi)


def _keep(item):
    """collate_fn: leave every item as it is (numpy arrays travel pickled)."""
    return item


#: error types a worker's message is re-raised as (their constructors take the message alone)
_REBUILT = {c.__name__: c for c in (project_errors.ImageLoadError, project_errors.DatasetError,
                                     project_errors.StoreError, project_errors.ConfigError)}


def _raise(error: tuple[str, str]):
    """Raise a worker's (type name, message) again in the main process: as its own type when
    that takes the message alone, else as DeepaggError (still exit code 2, message intact)."""
    raise _REBUILT.get(error[0], DeepaggError)(error[1])


def stream(claims: Iterable[Any], items: Sequence[Any], prepare: Callable[[Any], Any],
           num_workers: int = 2, prefetch: int = 4) -> tuple[ClaimedIndices, Iterator[tuple]]:
    """The sampler and the iterator of (index, prepared, error) over the claimed chunks."""
    sampler = ClaimedIndices(claims)
    dataset = PreparedImages(items, prepare)
    if num_workers == 0:
        return sampler, (dataset[i] for i in sampler)
    from torch.utils.data import DataLoader
    # the DataLoader gives each worker one torch thread; OpenCV's pool is left alone (calling
    # cv2.setNumThreads in a forked worker can deadlock on the parent's pool)
    loader = DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=num_workers,
                        collate_fn=_keep, prefetch_factor=prefetch)
    return sampler, iter(loader)


def stream_chunks(claims: Iterable[Any], items: Sequence[Any], extractor, batch_size: int,
                  num_workers: int = 2, lookahead: int | None = None,
                  on_batch: Callable[[int], None] | None = None
                  ) -> Iterator[tuple[Any, list[LocalFeatures]]]:
    """(chunk, its images' features) for every chunk ``claims`` yields, each once complete.

    claims:    chunk specs (``index``, ``lo``, ``hi``), each covering images [lo, hi) of ``items``;
               drawn lazily, as fast as the loader prefetches.
    items:     what ``extractor.preparer()`` reads, one per image.
    lookahead: images that must arrive after a chunk's last one before its partly filled buckets
               run (default 4 batches).
    on_batch:  called with the number of images of every forward pass (progress).
    """
    lookahead = 4 * batch_size if lookahead is None else lookahead
    sampler, arrivals = stream(claims, items, extractor.preparer(), num_workers)
    buckets: dict[Any, list[tuple[int, Any]]] = {}
    done: dict[int, LocalFeatures] = {}
    open_chunks: list[tuple[Any, int]] = []   # (chunk, stream position of its last image)
    n_claimed = 0                             # chunks of sampler.claimed already opened
    claimed_images = 0
    arrived = 0

    def run(bucket: list[tuple[int, Any]]) -> None:
        for (i, _), f in zip(bucket, extractor.run([p for _, p in bucket])):
            done[i] = f
        if on_batch is not None:
            on_batch(len(bucket))

    def flush(upto: int) -> None:
        """Run every bucket holding an image below ``upto``."""
        for key in [k for k, b in buckets.items() if any(i < upto for i, _ in b)]:
            run(buckets.pop(key))

    def complete() -> Iterator[tuple[Any, list[LocalFeatures]]]:
        for entry in list(open_chunks):
            spec = entry[0]
            if all(i in done for i in range(spec.lo, spec.hi)):
                open_chunks.remove(entry)
                yield spec, [done.pop(i) for i in range(spec.lo, spec.hi)]

    for i, prepared, error in arrivals:
        if error is not None:
            _raise(error)
        for spec in sampler.claimed[n_claimed:]:
            claimed_images += spec.hi - spec.lo
            open_chunks.append((spec, claimed_images))
        n_claimed = len(sampler.claimed)
        arrived += 1
        key = extractor.batch_key(prepared)
        bucket = buckets.setdefault(key, [])
        bucket.append((i, prepared))
        if len(bucket) >= batch_size:
            run(buckets.pop(key))
        for spec, end in open_chunks:   # chunks whose last image arrived ``lookahead`` images ago
            if end + lookahead <= arrived:
                flush(spec.hi)
        yield from complete()
    for key in list(buckets):
        run(buckets.pop(key))
    yield from complete()
    if open_chunks:
        raise RuntimeError(f"extraction ended with incomplete chunks {[s.index for s, _ in open_chunks]}")
