"""Your own benchmark: a folder of images plus a ground-truth file in the revisitop schema, or
three CSV files (database, queries, relevance: ``load_custom_csv``), or one HDF5 file
(``load_custom_h5``, layout in ``H5_LAYOUT`` and ``read_h5_ground_truth``).

The schema and its three encodings (pickle, JSON, .mat) are described in ``benchmarks.ground_truth``
and docs/datasets.md. easy/hard/junk lists select the revisited protocol, ok/junk the Oxford one.
The CSV and HDF5 forms are read into that schema and pass the same checks (``ground_truth.parse_ground_truth``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.base import RetrievalDataset
from benchmarks.errors import DatasetError, missing_root
from benchmarks.ground_truth import (KINDS, GroundTruth, build_dataset, parse_ground_truth,
                                     read_csv_ground_truth, read_ground_truth)
from benchmarks.imagefiles import ImageIndex

LAYOUT = """\
  ROOT/...                    the images, in any subfolders, named as in imlist / qimlist
                              (with or without suffix, by file name or path relative to ROOT)
  ROOT/gnd.json               the ground truth (.json, .pkl or .mat; any path via ground_truth)"""


CSV_LAYOUT = """\
  ROOT/...                    the images, in any subfolders, named as in the CSV files
  ROOT/database.csv           column image: the database, in its order
  ROOT/queries.csv            column image; optional x1, y1, x2, y2 (the query's box, pixels)
  ROOT/relevance.csv          columns query, image, relevance (ok / junk, or easy / hard / junk)"""


H5_LAYOUT = """\
  ROOT/...                    the images, in any subfolders, named as in the HDF5 file
  ROOT/benchmark.h5           database/images (N,) and queries/images (Q,): image names (strings);
                              optional queries/boxes (Q, 4): x1, y1, x2, y2 in pixels, NaN row = none;
                              relevance/KIND/offsets (Q+1,) and relevance/KIND/indices: each query's
                              0-based database indices in CSR form, KIND ok / junk or easy / hard / junk"""


def load_custom_csv(root: str | Path, name: str = "custom_csv", database_csv: str = "database.csv",
                    queries_csv: str = "queries.csv", relevance_csv: str = "relevance.csv",
                    crop_queries: bool = True, fit_on: str | None = None) -> RetrievalDataset:
    """The benchmark of three CSV files (``ground_truth.read_csv_ground_truth``; paths relative
    to ``root`` or absolute) over the images under ``root``: the layout other code exports."""
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, CSV_LAYOUT, None)
    files = [root / f for f in (database_csv, queries_csv, relevance_csv)]
    gt = read_csv_ground_truth(*files)
    return build_dataset(name, gt, ImageIndex(root, name), files[2], crop_queries=crop_queries,
                         meta={"crop_queries": crop_queries, "ground_truth": Path(relevance_csv).name},
                         fit_on=fit_on)


def load_custom(root: str | Path, ground_truth: str | Path, name: str = "custom",
                crop_queries: bool = True, fit_on: str | None = None) -> RetrievalDataset:
    """The benchmark of ``ground_truth`` (relative to ``root`` or absolute) over the images under ``root``.

    crop_queries: crop queries that have a ``bbx`` to it before extraction.
    fit_on:       the set to learn PCA / codebooks on by default (``RetrievalDataset.fit_on``).
    """
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, LAYOUT, None)
    gt_path = root / ground_truth
    if not gt_path.is_file():
        raise DatasetError(f"{name}: ground-truth file {gt_path} does not exist; expected layout:\n{LAYOUT}")
    gt = read_ground_truth(gt_path)
    return build_dataset(name, gt, ImageIndex(root, name), gt_path, crop_queries=crop_queries,
                         meta={"crop_queries": crop_queries, "ground_truth": Path(ground_truth).name},
                         fit_on=fit_on)


def load_custom_h5(root: str | Path, name: str = "custom_h5", ground_truth: str = "benchmark.h5",
                   crop_queries: bool = True, fit_on: str | None = None) -> RetrievalDataset:
    """The benchmark of one HDF5 file (``read_h5_ground_truth``; relative to ``root`` or absolute)
    over the images under ``root``: the one-file interchange form (ILIAS / AMES style)."""
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, H5_LAYOUT, None)
    path = root / ground_truth
    gt = read_h5_ground_truth(path)
    return build_dataset(name, gt, ImageIndex(root, name), path, crop_queries=crop_queries,
                         meta={"crop_queries": crop_queries, "ground_truth": Path(ground_truth).name},
                         fit_on=fit_on)


def read_h5_ground_truth(path: Path | str) -> GroundTruth:
    """The ground truth of an HDF5 file (needs h5py: ``pip install h5py`` or the ``hdf5`` extra):

    database/images  (N,) strings: the database image names, in database order;
    queries/images   (Q,) strings: the query image names (database images or other files);
    queries/boxes    optional (Q, 4) numbers: x1, y1, x2, y2 in pixels; a row of NaN: no box;
    relevance/KIND/offsets (Q+1,) integers from 0, non-decreasing, and relevance/KIND/indices
                     (offsets[Q],) integers: query i's 0-based database indices are
                     ``indices[offsets[i]:offsets[i + 1]]`` (CSR). KIND: ``ok`` (+ optional
                     ``junk``) for the Oxford protocol, ``easy`` / ``hard`` (+ optional ``junk``)
                     for the revisited one; a kind left out is empty for every query.
    Names with or without suffix. Anything missing or malformed stops with the file and the path
    inside it; a file that is no HDF5 (or truncated) is named too."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"ground-truth file {path} does not exist")
    try:
        import h5py
    except ImportError:
        raise DatasetError(f"ground-truth file {path}: HDF5 needs h5py: pip install h5py (or pip "
                           "install -e '.[hdf5]'), or give the benchmark as CSV files") from None
    try:
        with h5py.File(path, "r") as f:
            raw = _read_h5(f, path, h5py)
    except OSError as e:
        raise DatasetError(f"cannot read the HDF5 file {path} ({e}); is it a complete HDF5 file? "
                           "Copy or write it again") from e
    return parse_ground_truth(raw, 0, path)


def _read_h5(f, path: Path, h5py) -> dict:
    """The revisitop-schema dict of an open file (0-based indices), every dataset checked."""
    imlist = _h5_names(f, "database/images", path, h5py)
    queries = _h5_names(f, "queries/images", path, h5py)
    n, nq = len(imlist), len(queries)
    boxes = _h5_boxes(f, nq, path, h5py) if "queries" in f and "boxes" in f["queries"] else [None] * nq
    kinds = sorted(f["relevance"]) if isinstance(f.get("relevance"), h5py.Group) else []
    unknown = [k for k in kinds if k not in ("ok", "junk", "easy", "hard")]
    if unknown:
        raise DatasetError(f"ground-truth file {path}: relevance/{unknown[0]} is no relevance kind; "
                           "expected ok, junk, easy or hard")
    protocol = "revisited" if {"easy", "hard"} & set(kinds) else "oxford" if "ok" in kinds else None
    if protocol is None:
        raise DatasetError(f"ground-truth file {path} has no dataset relevance/ok (or relevance/easy "
                           f"and relevance/hard); the HDF5 layout:\n{H5_LAYOUT}")
    if protocol == "revisited" and "ok" in kinds:
        raise DatasetError(f"ground-truth file {path} holds relevance/ok beside relevance/easy / hard; "
                           "use one protocol's relevance for every query")
    lists = {k: _h5_csr(f, f"relevance/{k}", queries, n, path, h5py) if k in kinds else [[]] * nq
             for k in KINDS[protocol]}
    gnd = [{k: lists[k][i] for k in lists} | ({"bbx": boxes[i]} if boxes[i] is not None else {})
           for i in range(nq)]
    return {"imlist": imlist, "qimlist": queries, "gnd": gnd}


def _h5_dataset(f, key: str, path: Path, h5py):
    """The dataset at ``key``; DatasetError naming the file and the key when absent or a group."""
    try:
        obj = f.get(key)
    except (KeyError, TypeError, ValueError):   # a dataset where a group was expected on the way
        obj = None
    if obj is None:
        raise DatasetError(f"ground-truth file {path} has no dataset {key}; the HDF5 layout:\n{H5_LAYOUT}")
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"ground-truth file {path}: {key} is a group, not a dataset")
    return obj


def _h5_names(f, key: str, path: Path, h5py) -> list[str]:
    ds = _h5_dataset(f, key, path, h5py)
    if h5py.check_string_dtype(ds.dtype) is None or ds.ndim != 1:
        raise DatasetError(f"ground-truth file {path}: {key} holds {ds.dtype} of shape {ds.shape}; "
                           "expected a 1-D dataset of image names (strings)")
    return [str(v) for v in ds.asstr()[()]]


def _h5_boxes(f, nq: int, path: Path, h5py) -> list[list[float] | None]:
    key = "queries/boxes"
    ds = _h5_dataset(f, key, path, h5py)
    if ds.dtype.kind not in "iuf" or ds.shape != (nq, 4):
        raise DatasetError(f"ground-truth file {path}: {key} holds {ds.dtype} of shape {ds.shape}; "
                           f"expected ({nq}, 4) numbers x1, y1, x2, y2 (one row per query, NaN: no box)")
    boxes = np.asarray(ds[()], dtype=np.float64)
    out = []
    for i, row in enumerate(boxes):
        if np.isnan(row).all():
            out.append(None)
        elif not np.isfinite(row).all():
            raise DatasetError(f"ground-truth file {path}: {key} row {i} is {row.tolist()}; a box is "
                               "four finite numbers, or four NaN for none")
        else:
            out.append(row.tolist())
    return out


def _h5_csr(f, group: str, queries: list[str], n: int, path: Path, h5py) -> list[np.ndarray]:
    """Each query's indices of relevance group ``group`` (``offsets`` and ``indices``), checked."""
    offsets = _h5_dataset(f, f"{group}/offsets", path, h5py)
    indices = _h5_dataset(f, f"{group}/indices", path, h5py)
    nq = len(queries)
    for key, ds in ((f"{group}/offsets", offsets), (f"{group}/indices", indices)):
        if ds.dtype.kind not in "iu" or ds.ndim != 1:
            raise DatasetError(f"ground-truth file {path}: {key} holds {ds.dtype} of shape {ds.shape}; "
                               "expected a 1-D dataset of integers")
    if offsets.shape != (nq + 1,):
        raise DatasetError(f"ground-truth file {path}: {group}/offsets has {offsets.shape[0]} entries; "
                           f"expected {nq + 1} (one more than the {nq} queries)")
    o, idx = offsets[()].astype(np.int64), indices[()].astype(np.int64)
    if o[0] != 0 or o[-1] != len(idx):
        raise DatasetError(f"ground-truth file {path}: {group}/offsets runs from {o[0]} to {o[-1]}; "
                           f"expected 0 to {len(idx)} (the length of {group}/indices)")
    step = np.flatnonzero(np.diff(o) < 0)
    if len(step):
        i = int(step[0])
        raise DatasetError(f"ground-truth file {path}: {group}/offsets is not monotone: entry {i + 1} "
                           f"({o[i + 1]}) is below entry {i} ({o[i]}), at query {queries[i]!r}")
    bad = np.flatnonzero((idx < 0) | (idx >= n))
    if len(bad):
        j = int(bad[0])
        q = int(np.searchsorted(o, j, side="right")) - 1
        raise DatasetError(f"ground-truth file {path}: {group}/indices[{j}] is {idx[j]} (query "
                           f"{queries[q]!r}), outside the {n} images of database/images "
                           "(indices are 0-based)")
    return [idx[o[i]:o[i + 1]] for i in range(nq)]
