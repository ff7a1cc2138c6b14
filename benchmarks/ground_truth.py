"""Ground truth in the revisitop schema, read from a pickle, JSON or MATLAB file.

Schema: ``imlist`` (database image names, in database order), the queries as ``qimlist`` (image
names) or ``qidx`` (database indices), and ``gnd[i]`` per query: optional ``bbx`` (x1, y1, x2, y2
in pixels) and either ``easy``/``hard``/``junk`` (revisited protocol) or ``ok``/``junk`` (Oxford
protocol) as database indices. Indices are 0-based in pickles and JSON, 1-based in .mat files;
boxes are pixel coordinates in every format.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.errors import DatasetError
from benchmarks.imagefiles import ImageIndex, check_box, strip_suffix
from benchmarks.safe_pickle import safe_load

#: relevance kinds of each protocol, as ``Query.relevant`` keys
KINDS = {"revisited": ("easy", "hard", "junk"), "oxford": ("ok", "junk")}


@dataclass(frozen=True)
class GroundTruth:
    """A parsed ground truth; every index is 0-based into ``imlist``."""

    imlist: list[str]
    query_names: list[str]
    query_db: list[int | None]
    relevant: list[dict[str, np.ndarray]]
    boxes: list[tuple[float, ...] | None]
    protocol: str


def read_ground_truth(path: Path | str) -> GroundTruth:
    """Read and validate ``path`` (.pkl / .pickle, .json or .mat); DatasetError names what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"ground-truth file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        raw, base = safe_load(path), 0
    elif suffix == ".json":
        try:
            raw, base = json.loads(path.read_text(encoding="utf-8")), 0
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DatasetError(f"ground-truth file {path} is not valid JSON ({e})") from e
    elif suffix == ".mat":
        raw, base = _read_mat(path), 1
    else:
        raise DatasetError(f"ground-truth file {path}: unknown format {suffix!r}; "
                           "use .pkl, .json or .mat (schema in docs/datasets.md)")
    return _parse(raw, base, path)


def _read_mat(path: Path) -> dict:
    import scipy.io

    try:
        m = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except (ValueError, OSError, TypeError, NotImplementedError) as e:
        raise DatasetError(f"cannot read the MATLAB file {path} ({e}); save it as a v5-v7.2 .mat, "
                           "or convert it to JSON") from e
    out = {k: v for k, v in m.items() if not k.startswith("__")}
    for key in ("imlist", "qimlist"):
        if key in out:
            out[key] = [str(v) for v in np.atleast_1d(out[key]).ravel()]
    if "gnd" in out:
        out["gnd"] = [{f: getattr(g, f) for f in g._fieldnames} if hasattr(g, "_fieldnames") else g
                      for g in np.atleast_1d(out["gnd"]).ravel()]
    return out


def _parse(raw, base: int, path: Path) -> GroundTruth:
    if not isinstance(raw, Mapping):
        raise DatasetError(f"ground-truth file {path} holds a {type(raw).__name__}, not a mapping with "
                           "imlist, qimlist (or qidx) and gnd")
    missing = [k for k in ("imlist", "gnd") if k not in raw]
    if "qimlist" not in raw and "qidx" not in raw:
        missing.append("qimlist (or qidx)")
    if missing:
        raise DatasetError(f"ground-truth file {path} lacks {', '.join(missing)}; "
                           "schema in docs/datasets.md")
    imlist = [strip_suffix(str(n)) for n in raw["imlist"]]
    position = {n: i for i, n in enumerate(imlist)}
    if len(position) != len(imlist):
        dup = next(n for i, n in enumerate(imlist) if position[n] != i)
        raise DatasetError(f"ground-truth file {path}: image {dup!r} appears twice in imlist")
    n = len(imlist)
    if "qimlist" in raw:
        query_names = [strip_suffix(str(q)) for q in raw["qimlist"]]
        query_db = [position.get(q) for q in query_names]
    else:
        query_db = [int(i) for i in _indices(raw["qidx"], base, n, path, "qidx")]
        query_names = [imlist[i] for i in query_db]
    gnd = list(raw["gnd"])
    if len(gnd) != len(query_names):
        raise DatasetError(f"ground-truth file {path}: {len(gnd)} gnd entries for {len(query_names)} queries")
    protocol = None
    relevant, boxes = [], []
    for qn, g in zip(query_names, gnd):
        if not isinstance(g, Mapping):
            raise DatasetError(f"ground-truth file {path}: the gnd entry of query {qn!r} is not a mapping")
        kind = "revisited" if ("easy" in g or "hard" in g) else "oxford" if "ok" in g else None
        if kind is None:
            raise DatasetError(f"ground-truth file {path}: query {qn!r} has neither easy/hard nor ok "
                               "relevance lists")
        if protocol not in (None, kind):
            raise DatasetError(f"ground-truth file {path} mixes easy/hard and ok queries ({qn!r}); "
                               "use one schema for every query")
        protocol = kind
        relevant.append({k: _indices(g.get(k, ()), base, n, path, f"{k} of query {qn!r}")
                         for k in KINDS[kind]})
        bbx = g.get("bbx")
        boxes.append(None if bbx is None or np.size(bbx) == 0 else tuple(np.ravel(bbx).tolist()))
    return GroundTruth(imlist, query_names, query_db, relevant, boxes, protocol or "oxford")


def _indices(value, base: int, n: int, path: Path, what: str) -> np.ndarray:
    """0-based int64 indices from a scalar or a sequence, checked to lie in [0, n)."""
    arr = np.atleast_1d(np.asarray(value if value is not None else (), dtype=np.float64)).ravel()
    if not np.all(arr == np.round(arr)):
        raise DatasetError(f"ground-truth file {path}: {what} holds non-integer indices")
    idx = arr.astype(np.int64) - base
    bad = idx[(idx < 0) | (idx >= n)]
    if len(bad):
        raise DatasetError(f"ground-truth file {path}: {what} holds index {int(bad[0]) + base}, outside "
                           f"the {n} images of imlist (indices are {base}-based in this format)")
    return idx


def build_dataset(name: str, gt: GroundTruth, index: ImageIndex, source: Path, *,
                  crop_queries: bool, meta: dict) -> RetrievalDataset:
    """The dataset of ``gt`` with images found in ``index``; query boxes checked against their images."""
    images = [ImageRef(n, index.path(n, listed_in=source)) for n in gt.imlist]
    queries = []
    for qn, db, rel, box in zip(gt.query_names, gt.query_db, gt.relevant, gt.boxes):
        image = images[db] if db is not None else ImageRef(qn, index.path(qn, listed_in=source))
        if box is not None:
            box = check_box(name, qn, box, image.path)
        queries.append(Query(image=image, relevant=rel, db_index=db, box=box))
    return RetrievalDataset(name=name, images=images, queries=queries, protocol=gt.protocol,
                            crop_queries=crop_queries, meta=meta)
