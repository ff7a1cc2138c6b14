"""Rankings and similarity matrices made elsewhere, read to be scored (``deepagg-eval
rankings=PATH`` / ``similarity=PATH``; README, "Descriptors in and out").

Layouts:

- rankings, ``.csv``: GLDv2's submission format, columns ``id`` (a query's name) and ``images``
  (its ranked database image names, best first, separated by spaces); one row per query, in any
  order; rows may differ in length.
- rankings, ``.npz``: ``rankings`` (n_q, L) integer database indices, best first, row j the
  benchmark's query j; optional ``query_names`` and ``database_names``, checked when present.
- similarity, ``.npy``: (n_q, N) scores, rows the benchmark's queries and columns its images, in
  its order (no names: the shape is checked); memory-mapped and read in blocks of rows (float64
  and integer scores ranked in float64, others in float32).
- similarity, ``.npz``: ``similarity`` (n_q, N) and optional ``query_names``, ``database_names``.

A similarity is ranked by the ranking convention (decreasing score, ties by database order). A
ranking of L < N images is scored as it is: positives outside it count as never retrieved (what
Oxford's ``compute_ap`` does with a short list, and GLDv2's mAP@100 reads only the top 100); every
k of a metric must be at most L (or N). Rows shorter than L (CSV) end in -1, an index no image
has (also in the ``topk`` of the job's rankings.npz).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from benchmarks.base import RetrievalDataset
from benchmarks.descriptor_files import names_of
from benchmarks.errors import DatasetError

PAD = -1     # the end of a CSV row shorter than the longest


def read_rankings(path: Path, dataset: RetrievalDataset) -> np.ndarray:
    """(n_q, L) int64 rankings of ``dataset``'s queries from ``path`` (.csv or .npz); DatasetError
    naming the file, the line or row, the expected and the found for anything that does not fit."""
    path = Path(path)
    _exists(path, "rankings")
    if path.suffix.lower() == ".csv":
        return _read_csv(path, dataset)
    if path.suffix.lower() != ".npz":
        raise DatasetError(f"rankings {path}: not a .csv (GLDv2's id,images) or .npz file")
    arrays = _load_npz(path, "rankings")
    _check_names(arrays, dataset, path)
    r = arrays["rankings"]
    n_q, n = len(dataset.queries), len(dataset)
    if r.ndim != 2 or not np.issubdtype(r.dtype, np.integer):
        raise DatasetError(f"rankings {path}: rankings must be an (n_queries, L) matrix of integer "
                           f"database indices, found shape {r.shape} of {r.dtype}")
    if len(r) != n_q or r.shape[1] == 0:
        raise DatasetError(f"rankings {path}: {r.shape[0]} rows of {r.shape[1]}, but "
                           f"{dataset.name} has {n_q} queries: one non-empty row per query")
    bad = np.argwhere((r < 0) | (r >= n))
    if len(bad):
        i, j = bad[0]
        raise DatasetError(f"rankings {path}: row {i}, position {j} is {r[i, j]}, not an index of "
                           f"{dataset.name}'s {n} images (0 .. {n - 1})")
    ordered = np.sort(r, axis=1)
    repeated = np.argwhere(ordered[:, 1:] == ordered[:, :-1])
    if len(repeated):
        i, j = repeated[0]
        raise DatasetError(f"rankings {path}: row {i} lists image {ordered[i, j]} more than once; "
                           "a ranking lists each image at most once")
    return r.astype(np.int64)


def read_similarity(path: Path, dataset: RetrievalDataset) -> np.ndarray:
    """The (n_q, N) similarity of ``path`` (.npy, memory-mapped, or .npz), checked against
    ``dataset``'s shape and names; finiteness is checked block by block when it is ranked."""
    path = Path(path)
    _exists(path, "similarity")
    if path.suffix.lower() == ".npy":
        try:
            s = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise DatasetError(f"similarity {path}: cannot read it ({e}); is it complete?") from e
    elif path.suffix.lower() == ".npz":
        arrays = _load_npz(path, "similarity")
        _check_names(arrays, dataset, path)
        s = arrays["similarity"]
    else:
        raise DatasetError(f"similarity {path}: not a .npy or .npz file")
    expected = (len(dataset.queries), len(dataset))
    if s.shape != expected or not np.issubdtype(s.dtype, np.number):
        raise DatasetError(f"similarity {path}: a {s.shape} matrix of {s.dtype}, but {dataset.name} "
                           f"needs {expected} numbers (a row per query, a column per image, in its order)")
    return s


def check_length(rankings: np.ndarray, path: Path, ks, n_images: int) -> None:
    """DatasetError unless the rankings are at least as long as the largest k of a metric (or
    the whole database of ``n_images``, where that is shorter). Rows of a CSV may still be shorter,
    and junk taken out of a list shortens it further: those are scored as they are."""
    need = min(max(ks, default=0), n_images)
    if rankings.shape[1] < need:
        raise DatasetError(f"rankings {path}: {rankings.shape[1]} images per query, but the metrics "
                           f"read the top {need} (mP@k, map_at, recall_at); give at least {need} "
                           "per query, or lower the k")


def _read_csv(path: Path, dataset: RetrievalDataset) -> np.ndarray:
    db_names, q_names = names_of(dataset)
    image_index = {name: i for i, name in enumerate(db_names)}
    query_index = {name: i for i, name in enumerate(q_names)}
    if len(query_index) != len(q_names):
        twice = next(n for n in q_names if q_names.count(n) > 1)
        raise DatasetError(f"rankings {path}: {dataset.name} has two queries named {twice!r} (one "
                           "image queried twice), which a CSV row cannot tell apart; give the "
                           "rankings as .npz (rows in the query order)")
    rows: dict[int, list[int]] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            _read_csv_rows(reader, path, dataset, query_index, image_index, rows)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"rankings {path}: not a UTF-8 CSV file ({e})") from None
    missing = [q_names[q] for q in range(len(q_names)) if q not in rows]
    if missing:
        raise DatasetError(f"rankings {path}: {len(missing)} of {dataset.name}'s queries have no row "
                           f"(e.g. {missing[0]!r}); rank every query")
    out = np.full((len(q_names), max(1, max(len(r) for r in rows.values()))), PAD, np.int64)
    for q, r in rows.items():
        out[q, :len(r)] = r
    return out


def _read_csv_rows(reader, path: Path, dataset: RetrievalDataset, query_index: dict,
                   image_index: dict, rows: dict) -> None:
    """Each CSV row into ``rows`` (query index -> database indices), every problem named with
    its line."""
    if not reader.fieldnames or not {"id", "images"} <= set(reader.fieldnames):
        raise DatasetError(f"rankings {path}: the header must have columns id,images (GLDv2's "
                           f"submission format), found {reader.fieldnames}")
    for row in reader:
        line = reader.line_num
        if None in row:
            raise DatasetError(f"rankings {path}, line {line}: more fields than the header's; the "
                               "images of a row are separated by spaces, not commas")
        q = query_index.get(row["id"])
        if q is None:
            raise DatasetError(f"rankings {path}, line {line}: {row['id']!r} is not a query of "
                               f"{dataset.name}")
        if q in rows:
            raise DatasetError(f"rankings {path}, line {line}: query {row['id']!r} ranked twice")
        names = (row["images"] or "").split()
        unknown = [n for n in names if n not in image_index]
        if unknown:
            raise DatasetError(f"rankings {path}, line {line}: {unknown[0]!r} is not an image of "
                               f"{dataset.name}'s database")
        if len(set(names)) != len(names):
            raise DatasetError(f"rankings {path}, line {line}: an image is listed more than once")
        rows[q] = [image_index[n] for n in names]


def _exists(path: Path, what: str) -> None:
    if not path.is_file():
        raise DatasetError(f"{what} {path}: no such file")


def _load_npz(path: Path, key: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise DatasetError(f"{key} {path}: cannot read it ({type(e).__name__}: {e}); is it "
                           "complete? Write it again") from e
    if key not in arrays:
        raise DatasetError(f"{key} {path}: no array {key!r} in the file (it has {sorted(arrays)})")
    return arrays


def _check_names(arrays: dict, dataset: RetrievalDataset, path: Path) -> None:
    """The optional name arrays equal the benchmark's, in its order."""
    db_names, q_names = names_of(dataset)
    for key, expected in (("database_names", db_names), ("query_names", q_names)):
        if key not in arrays:
            continue
        if arrays[key].ndim != 1:
            raise DatasetError(f"{path}: {key} must be a 1-D array of names, found shape "
                               f"{arrays[key].shape}")
        found = [str(n) for n in arrays[key]]
        if found != expected:
            i = next((i for i, (a, b) in enumerate(zip(expected, found)) if a != b),
                     min(len(found), len(expected)))
            raise DatasetError(f"{path}: {key} has {len(found)} names, {dataset.name} {len(expected)}; "
                               f"the first difference is at {i}: {found[i] if i < len(found) else None!r} "
                               f"where {dataset.name} has {expected[i] if i < len(expected) else None!r}")
