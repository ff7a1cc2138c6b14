"""Global descriptors in and out of deepagg: one benchmark's database and query descriptors with
their image names, in a documented layout (README, "Descriptors in and out").

Layouts (``write_descriptors`` / ``read_descriptors``):

- a folder: ``database.npy`` (N, D) float32, ``queries.npy`` (n_q, D) float32 and
  ``descriptors.json`` {"format", "dataset", "n_database", "n_queries", "dim",
  "database_names", "query_names", "meta"};
- HDF5 (``.h5`` / ``.hdf5``, needs ``h5py``: ``pip install -e '.[hdf5]'``): datasets
  ``database``, ``queries``, ``database_names``, ``query_names`` (UTF-8 strings) and the
  attributes ``format``, ``dataset``, ``meta`` (JSON);
- optionally (``deepagg-export --local``) each image's local features, for the database and
  for every query (a cropped query's own features; else its database image's), as a ragged
  array in three parts per set S (``database``, ``queries``): ``S_descriptors`` (M, d) in the
  store's dtype, ``S_positions`` (M, 2) float32 (x, y in [0, 1]) and ``S_offsets`` (n + 1,)
  int64 (image i is rows offsets[i]:offsets[i + 1]), plus ``S_grids`` (n, 2) int64 (h, w of a
  dense map; 0, 0 for sparse features): ``local/S_*.npy`` in a folder, ``local/S/*`` datasets
  (``descriptors``, ``positions``, ``offsets``, ``grids``) in HDF5;
- read only, a torch file (``.pt``): a dict with the four arrays of the HDF5 layout (tensors or
  arrays, names as lists of strings), as ``torch.save`` writes it (loaded with
  ``weights_only=True``).

Rows are in the benchmark's order (``RetrievalDataset.images`` and ``.queries``); the names say
which image each row is, and ``check_against`` refuses any mismatch rather than guessing.
Writing is atomic: a temporary file or folder renamed into place, so a failed write leaves
nothing behind.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np

from benchmarks.base import RetrievalDataset
from benchmarks.errors import DatasetError, OutputError

FORMAT = "deepagg-descriptors/1"
HDF5_SUFFIXES = (".h5", ".hdf5")
ARRAYS = ("database", "queries")
BLOCK = 65536          # rows checked at a time (a check's temporaries stay bounded)


@dataclass
class DescriptorSet:
    """One benchmark's global descriptors.

    database: (N, D) float32, row i the image ``database_names[i]``.
    queries:  (n_q, D) float32, row j the query ``query_names[j]`` (its image's name).
    meta:     what made them (deepagg writes the run's config and metrics); free-form JSON.
    local:    optional {"database": ..., "queries": ...}, sequences of LocalFeatures (one per
              row), written with the descriptors (module docstring); ``read_descriptors`` does
              not read them back (they are plain arrays: np.load / h5py).
    """

    dataset: str
    database: np.ndarray
    queries: np.ndarray
    database_names: list[str]
    query_names: list[str]
    meta: dict = field(default_factory=dict)
    local: dict | None = None

    @property
    def dim(self) -> int:
        return int(self.database.shape[1])


def names_of(dataset: RetrievalDataset) -> tuple[list[str], list[str]]:
    """(database image names, query image names) of a benchmark, in its order."""
    return [im.name for im in dataset.images], [q.image.name for q in dataset.queries]


# ----------------------------------------------------------------------------- write
def write_descriptors(descriptors: DescriptorSet, path: Path) -> Path:
    """``descriptors`` at ``path``: HDF5 when it ends in .h5 / .hdf5, else a folder. Atomic: an
    existing ``path`` is replaced only once the new one is complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        if path.suffix.lower() in HDF5_SUFFIXES:
            _write_hdf5(descriptors, tmp)
        else:
            _write_folder(descriptors, tmp)
        if path.is_dir() and not tmp.is_dir():
            raise OutputError(f"{path} is a folder; name an HDF5 file that does not exist")
        if path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write {path} ({e.strerror or e}); nothing was written there: "
                          "free space or choose another path") from e
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
    return path


def _header(d: DescriptorSet) -> dict:
    return {"format": FORMAT, "dataset": d.dataset, "n_database": len(d.database),
            "n_queries": len(d.queries), "dim": d.dim}


def _write_folder(d: DescriptorSet, folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ARRAYS:
        np.save(folder / f"{name}.npy", np.ascontiguousarray(getattr(d, name), dtype=np.float32))
    (folder / "descriptors.json").write_text(json.dumps(
        _header(d) | {"database_names": list(d.database_names), "query_names": list(d.query_names),
                      "meta": d.meta}, indent=1, default=str))
    for part, features in (d.local or {}).items():
        _write_local_npy(features, folder / "local", part)


def _local_sizes(features) -> tuple[np.ndarray, int, np.dtype]:
    """(offsets (n + 1,), d, dtype) of a sequence of LocalFeatures: one pass over it."""
    counts, dim, dtype = [], 0, np.dtype(np.float32)
    for f in features:
        counts.append(f.n)
        dim, dtype = f.dim, f.descriptors.dtype
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]), dim, dtype


def _grid(f) -> tuple[int, int]:
    return f.grid if f.grid is not None else (0, 0)


def _write_local_npy(features, folder: Path, part: str) -> None:
    """``part``'s ragged local features as .npy files, filled image by image (a second pass over
    ``features`` once the sizes are known): memory of one image's features."""
    folder.mkdir(exist_ok=True)
    offsets, dim, dtype = _local_sizes(features)
    np.save(folder / f"{part}_offsets.npy", offsets)
    if offsets[-1] == 0:         # no image has a feature (a memory map cannot be empty)
        np.save(folder / f"{part}_descriptors.npy", np.zeros((0, dim), dtype))
        np.save(folder / f"{part}_positions.npy", np.zeros((0, 2), np.float32))
        np.save(folder / f"{part}_grids.npy", np.zeros((len(offsets) - 1, 2), np.int64))
        return
    open_npy = np.lib.format.open_memmap
    desc = open_npy(folder / f"{part}_descriptors.npy", "w+", dtype, (int(offsets[-1]), dim))
    pos = open_npy(folder / f"{part}_positions.npy", "w+", np.float32, (int(offsets[-1]), 2))
    grids = np.zeros((len(offsets) - 1, 2), np.int64)
    for i, f in enumerate(features):
        desc[offsets[i]:offsets[i + 1]], pos[offsets[i]:offsets[i + 1]] = f.descriptors, f.positions
        grids[i] = _grid(f)
    desc.flush(), pos.flush()
    del desc, pos
    np.save(folder / f"{part}_grids.npy", grids)


def _h5py(path: Path):
    try:
        import h5py
    except ImportError:
        raise DatasetError(f"{path}: HDF5 needs h5py: pip install h5py (or pip install -e "
                           "'.[hdf5]'), or use a folder of .npy files") from None
    return h5py


def _write_hdf5(d: DescriptorSet, path: Path) -> None:
    h5py = _h5py(path)
    strings = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        for name in ARRAYS:
            f.create_dataset(name, data=np.asarray(getattr(d, name), dtype=np.float32))
        f.create_dataset("database_names", data=list(d.database_names), dtype=strings)
        f.create_dataset("query_names", data=list(d.query_names), dtype=strings)
        for key, value in _header(d).items():
            f.attrs[key] = value
        f.attrs["meta"] = json.dumps(d.meta, default=str)
        for part, features in (d.local or {}).items():
            _write_local_hdf5(features, f.create_group(f"local/{part}"))


def _write_local_hdf5(features, group) -> None:
    """``features`` appended image by image to growing datasets of ``group`` (one pass)."""
    desc = pos = None
    offsets, grids = [0], []
    for f in features:
        if desc is None:
            desc = group.create_dataset("descriptors", (0, f.dim), f.descriptors.dtype,
                                        maxshape=(None, f.dim), chunks=True)
            pos = group.create_dataset("positions", (0, 2), np.float32, maxshape=(None, 2), chunks=True)
        lo, hi = offsets[-1], offsets[-1] + f.n
        desc.resize(hi, axis=0)
        pos.resize(hi, axis=0)
        desc[lo:hi], pos[lo:hi] = f.descriptors, f.positions
        offsets.append(hi)
        grids.append(_grid(f))
    if desc is None:
        group.create_dataset("descriptors", (0, 0), np.float32)
        group.create_dataset("positions", (0, 2), np.float32)
    group.create_dataset("offsets", data=np.asarray(offsets, np.int64))
    group.create_dataset("grids", data=np.asarray(grids, np.int64).reshape(-1, 2))


# ----------------------------------------------------------------------------- read
def read_descriptors(path: Path) -> DescriptorSet:
    """The descriptors at ``path`` (a folder, an HDF5 or a .pt file); DatasetError naming the
    file for anything missing, truncated or malformed."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"descriptors {path}: no such file or folder")
    try:
        if path.is_dir():
            d = _read_folder(path)
        elif path.suffix.lower() in HDF5_SUFFIXES:
            d = _read_hdf5(path)
        elif path.suffix.lower() == ".pt":
            d = _read_torch(path)
        else:
            raise DatasetError(f"descriptors {path}: not a folder, .h5 / .hdf5 or .pt file")
    except (OSError, ValueError, KeyError, TypeError, EOFError, RuntimeError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"descriptors {path}: cannot read it ({type(e).__name__}: {e}); "
                           "is it complete? Write it again") from e
    _check_shapes(d, path)
    return d


def _read_folder(folder: Path) -> DescriptorSet:
    header = folder / "descriptors.json"
    missing = [p.name for p in (header, folder / "database.npy", folder / "queries.npy")
               if not p.exists()]
    if missing:
        raise DatasetError(f"descriptors {folder}: missing {', '.join(missing)} (the folder layout: "
                           "database.npy, queries.npy, descriptors.json)")
    h = json.loads(header.read_text())
    for key in ("dataset", "database_names", "query_names"):
        if key not in h:
            raise DatasetError(f"descriptors {header}: no {key!r} (each row needs its image name)")
    return DescriptorSet(h["dataset"], np.load(folder / "database.npy"), np.load(folder / "queries.npy"),
                         list(h["database_names"]), list(h["query_names"]), h.get("meta", {}))


def _read_hdf5(path: Path) -> DescriptorSet:
    h5py = _h5py(path)
    with h5py.File(path, "r") as f:
        missing = [k for k in (*ARRAYS, "database_names", "query_names") if k not in f]
        if missing:
            raise DatasetError(f"descriptors {path}: no dataset {', '.join(missing)} in the file "
                               "(the HDF5 layout: database, queries, database_names, query_names)")
        names = {k: [n.decode() if isinstance(n, bytes) else str(n) for n in f[k][()]]
                 for k in ("database_names", "query_names")}
        meta = json.loads(f.attrs["meta"]) if "meta" in f.attrs else {}
        return DescriptorSet(str(f.attrs.get("dataset", "")), f["database"][()], f["queries"][()],
                             names["database_names"], names["query_names"], meta)


def _read_torch(path: Path) -> DescriptorSet:
    import torch
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise DatasetError(f"descriptors {path}: a .pt file must hold a dict with database, queries, "
                           f"database_names and query_names; it holds a {type(obj).__name__}")
    missing = [k for k in (*ARRAYS, "database_names", "query_names") if k not in obj]
    if missing:
        raise DatasetError(f"descriptors {path}: the dict has no {', '.join(missing)}")

    def array(v):
        return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
    return DescriptorSet(str(obj.get("dataset", "")), array(obj["database"]), array(obj["queries"]),
                         [str(n) for n in obj["database_names"]], [str(n) for n in obj["query_names"]],
                         dict(obj.get("meta", {})))


def _check_shapes(d: DescriptorSet, path: Path) -> None:
    """Two real 2-D matrices of one width, finite, as many names as rows; converted to float32."""
    for name in ARRAYS:
        a = np.asarray(getattr(d, name))
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise DatasetError(f"descriptors {path}: {name} must be an (n, D) matrix of numbers, "
                               f"found shape {a.shape} of {a.dtype}")
        setattr(d, name, a.astype(np.float32, copy=False))
    if d.database.shape[1] != d.queries.shape[1]:
        raise DatasetError(f"descriptors {path}: database rows are {d.database.shape[1]}-D but "
                           f"query rows {d.queries.shape[1]}-D")
    for name, names in (("database", d.database_names), ("queries", d.query_names)):
        rows = getattr(d, name)
        if len(names) != len(rows):
            raise DatasetError(f"descriptors {path}: {len(rows)} {name} rows but {len(names)} names")
        bad = np.concatenate([lo + np.flatnonzero(~np.isfinite(rows[lo:lo + BLOCK]).all(axis=1))
                              for lo in range(0, len(rows), BLOCK)] or [np.zeros(0, np.int64)])
        if len(bad):
            raise DatasetError(f"descriptors {path}: {len(bad)} {name} row(s) hold NaN or infinity "
                               f"(the first: row {bad[0]}, {names[bad[0]]!r}); fix them at the source")


def check_against(d: DescriptorSet, dataset: RetrievalDataset, path: Path) -> None:
    """DatasetError naming ``path``, the expected and the found, unless ``d`` has one row per
    image and per query of ``dataset``, in its order, by name."""
    db_names, q_names = names_of(dataset)
    for what, expected, found in (("database images", db_names, d.database_names),
                                  ("queries", q_names, d.query_names)):
        if len(found) != len(expected):
            raise DatasetError(f"descriptors {path}: {len(found)} {what}, but {dataset.name} has "
                               f"{len(expected)}; export one row per {what[:-1]} of {dataset.name}")
        if found != expected:
            i = next(i for i, (a, b) in enumerate(zip(expected, found)) if a != b)
            unknown = sorted(set(found) - set(expected))
            extra = (f"; {len(unknown)} name(s) are not {what} of {dataset.name} (e.g. "
                     f"{unknown[0]!r})" if unknown else "; the same names in another order")
            raise DatasetError(f"descriptors {path}: {what} row {i} is {found[i]!r} but "
                               f"{dataset.name}'s {what} {i} is {expected[i]!r}{extra}. Rows must "
                               "follow the benchmark's order (deepagg-export writes it)")


def descriptor_set(dataset: RetrievalDataset, database: np.ndarray, queries: np.ndarray,
                   meta: dict | None = None, local: dict | None = None) -> DescriptorSet:
    """A DescriptorSet of ``dataset``'s images and queries (rows in its order)."""
    db_names, q_names = names_of(dataset)
    return DescriptorSet(dataset.name, np.asarray(database, np.float32), np.asarray(queries, np.float32),
                         db_names, q_names, dict(meta or {}), local)
