"""Ground truth in the revisitop schema, read from a pickle, JSON or MATLAB file, or from three
CSV files (``read_csv_ground_truth``: the layout other code exports, ILIAS-style).

Schema: ``imlist`` (database image names, in database order), the queries as ``qimlist`` (image
names) or ``qidx`` (database indices), and ``gnd[i]`` per query: optional ``bbx`` (x1, y1, x2, y2
in pixels) and either ``easy``/``hard``/``junk`` (revisited protocol) or ``ok``/``junk`` (Oxford
protocol) as database indices. Indices are 0-based in pickles and JSON, 1-based in .mat files;
boxes are pixel coordinates in every format.
"""
from __future__ import annotations

import csv
import json
import math
import reprlib
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
    return parse_ground_truth(raw, base, path)


def _read_mat(path: Path) -> dict:
    import scipy.io

    try:
        m = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except Exception as e:  # noqa: BLE001 - scipy's reader raises MatReadError, ValueError, OSError,
        # zlib.error, ... on a malformed file, and nothing else runs here
        raise DatasetError(f"cannot read the MATLAB file {path} ({type(e).__name__}: {e}); save it as a "
                           "v5-v7.2 .mat, or convert it to JSON") from e
    out = {k: v for k, v in m.items() if not k.startswith("__")}
    for key in ("imlist", "qimlist"):
        if key in out:
            out[key] = [str(v) for v in np.atleast_1d(out[key]).ravel()]
    if "gnd" in out:
        out["gnd"] = [{f: getattr(g, f) for f in g._fieldnames} if hasattr(g, "_fieldnames") else g
                      for g in np.atleast_1d(out["gnd"]).ravel()]
    return out


def parse_ground_truth(raw, base: int, path: Path) -> GroundTruth:
    """The ground truth of ``raw``; ``base`` 1 (a .mat: indices 1-based, stored as doubles) or 0."""
    if not isinstance(raw, Mapping):
        raise DatasetError(f"ground-truth file {path} holds a {type(raw).__name__}, not a mapping with "
                           "imlist, qimlist (or qidx) and gnd")
    missing = [k for k in ("imlist", "gnd") if k not in raw]
    if "qimlist" not in raw and "qidx" not in raw:
        missing.append("qimlist (or qidx)")
    if missing:
        raise DatasetError(f"ground-truth file {path} lacks {', '.join(missing)}; "
                           "schema in docs/datasets.md")
    doubles = base == 1
    imlist = [strip_suffix(n) for n in _names(raw["imlist"], path, "imlist")]
    position = {n: i for i, n in enumerate(imlist)}
    if len(position) != len(imlist):
        dup = next(n for i, n in enumerate(imlist) if position[n] != i)
        raise DatasetError(f"ground-truth file {path}: image {dup!r} appears twice in imlist")
    n = len(imlist)
    if "qimlist" in raw:
        query_names = [strip_suffix(q) for q in _names(raw["qimlist"], path, "qimlist")]
        query_db = [position.get(q) for q in query_names]
    else:
        query_db = [int(i) for i in _indices(raw["qidx"], base, n, path, "qidx", doubles)]
        query_names = [imlist[i] for i in query_db]
    gnd = _sequence(raw["gnd"], path, "gnd")
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
        relevant.append({k: _indices(g.get(k, ()), base, n, path, f"{k} of query {qn!r}", doubles)
                         for k in KINDS[kind]})
        boxes.append(_box(g.get("bbx"), path, qn))
    return GroundTruth(imlist, query_names, query_db, relevant, boxes, protocol or "oxford")


def read_csv_ground_truth(database_csv: Path, queries_csv: Path, relevance_csv: Path) -> GroundTruth:
    """The ground truth of three CSV files (a header row each; names with or without suffix):

    database_csv:  column ``image``, the database in its order;
    queries_csv:   column ``image`` (a database image or another file), optional ``x1, y1, x2, y2``
                   (the query's box, pixels; all four or none);
    relevance_csv: columns ``query``, ``image``, ``relevance`` (``ok`` / ``junk`` for the Oxford
                   protocol, ``easy`` / ``hard`` / ``junk`` for the revisited one): one row per
                   relevant or junk image of a query.
    Every name is checked: a relevance row naming an unknown query or image stops with the file
    and the line."""
    def rows(path: Path, needed: tuple[str, ...]) -> list[tuple[int, dict]]:
        if not Path(path).is_file():
            raise DatasetError(f"ground-truth file {path} does not exist")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"ground-truth file {path} has no column {', '.join(missing)} (its "
                                   f"header: {reader.fieldnames})")
            return list(enumerate(reader, start=2))
    imlist = [r["image"] for _, r in rows(database_csv, ("image",))]
    queries = rows(queries_csv, ("image",))
    names = [strip_suffix(r["image"]) for _, r in queries]
    which = {n: i for i, n in enumerate(names)}
    if len(which) < len(names):
        raise DatasetError(f"ground-truth file {queries_csv} lists a query image twice")
    position = {strip_suffix(n): i for i, n in enumerate(imlist)}
    gnd: list[dict] = [{} for _ in names]
    for (line, r), g in zip(queries, gnd):
        corners = [r.get(k) for k in ("x1", "y1", "x2", "y2")]
        if any(c not in (None, "") for c in corners):
            try:
                g["bbx"] = [float(c) for c in corners]
            except (TypeError, ValueError):
                raise DatasetError(f"ground-truth file {queries_csv} line {line}: the box needs four "
                                   f"numbers x1, y1, x2, y2, got {corners}") from None
    for line, r in rows(relevance_csv, ("query", "image", "relevance")):
        q, im, kind = strip_suffix(r["query"]), strip_suffix(r["image"]), r["relevance"]
        if q not in which:
            raise DatasetError(f"ground-truth file {relevance_csv} line {line}: query {r['query']!r} "
                               f"is not in {queries_csv}")
        if im not in position:
            raise DatasetError(f"ground-truth file {relevance_csv} line {line}: image {r['image']!r} "
                               f"is not in {database_csv}")
        if kind not in ("ok", "junk", "easy", "hard"):
            raise DatasetError(f"ground-truth file {relevance_csv} line {line}: relevance {kind!r}; "
                               "expected ok, junk, easy or hard")
        gnd[which[q]].setdefault(kind, []).append(position[im])
    protocol = "revisited" if any("easy" in g or "hard" in g for g in gnd) else "oxford"
    for name, g in zip(names, gnd):
        if protocol == "revisited" and "ok" in g:
            raise DatasetError(f"ground-truth file {relevance_csv} mixes ok with easy / hard "
                               f"(query {name!r}); use one protocol's relevance for every query")
        for kind in KINDS[protocol]:      # a query without some kind gets an empty list of it
            g.setdefault(kind, [])
    return parse_ground_truth({"imlist": imlist, "qimlist": names, "gnd": gnd}, 0, Path(relevance_csv))


def _sequence(value, path: Path, field: str) -> list:
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    if not isinstance(value, (list, tuple)):
        raise DatasetError(f"ground-truth file {path}: {field} is {reprlib.repr(value)} "
                           f"({type(value).__name__}), not a list")
    return list(value)


def _names(value, path: Path, field: str) -> list[str]:
    """Image names: a list of strings."""
    names = _sequence(value, path, field)
    bad = next((v for v in names if not isinstance(v, str)), None)
    if bad is not None:
        raise DatasetError(f"ground-truth file {path}: {field} holds {bad!r} ({type(bad).__name__}), "
                           "not an image name (a string)")
    return [str(v) for v in names]


def _box(value, path: Path, query: str) -> tuple[float, ...] | None:
    """A query box: None, or four finite numbers (booleans and strings refused)."""
    if value is None or np.size(value) == 0:
        return None
    values = _scalars(value, path, f"bbx of query {query!r}", floats=True, expected="numbers")
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise DatasetError(f"ground-truth file {path}: bbx of query {query!r} is {value!r}; expected "
                           "four finite numbers x1, y1, x2, y2 in pixels")
    return tuple(float(v) for v in values)


def _indices(value, base: int, n: int, path: Path, what: str, doubles: bool) -> np.ndarray:
    """0-based int64 indices from an integer or a sequence of them, checked to lie in [0, n).
    ``doubles``: the format stores numbers as doubles (MATLAB), so integral floats count as integers."""
    values = _scalars(value, path, what, floats=doubles,
                      expected="integers (or integral numbers)" if doubles else "integers")
    for v in values:
        if isinstance(v, float) and not (math.isfinite(v) and v == int(v)):
            raise DatasetError(f"ground-truth file {path}: {what} holds the non-integer index {v!r}")
        if not base <= v < n + base:
            raise DatasetError(f"ground-truth file {path}: {what} holds index {int(v)}, outside the {n} "
                               f"images of imlist (indices are {base}-based in this format)")
    return np.asarray([int(v) - base for v in values], dtype=np.int64)


def _scalars(value, path: Path, what: str, floats: bool, expected: str) -> list[int | float]:
    """The numbers of a scalar, a (nested) sequence or an array, as Python ints (and floats when
    ``floats``); strings, booleans and other types refused, naming the file, the field and what
    was ``expected``."""
    if value is None:
        return []
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu" + "f" * floats:
        return value.ravel().tolist()
    if isinstance(value, np.ndarray) and value.size == 0:
        return []
    items = value.ravel().tolist() if isinstance(value, np.ndarray) else value
    if isinstance(items, (list, tuple)):
        return [x for item in items for x in _scalars(item, path, what, floats, expected)]
    if isinstance(items, (bool, np.bool_)) or not isinstance(
            items, (int, np.integer) + ((float, np.floating) if floats else ())):
        raise DatasetError(f"ground-truth file {path}: {what} holds {reprlib.repr(items)} "
                           f"({type(items).__name__}); it must hold {expected}")
    return [items.item() if isinstance(items, np.generic) else items]


def build_dataset(name: str, gt: GroundTruth, index: ImageIndex, source: Path, *,
                  crop_queries: bool, meta: dict, fit_on: str | None = None) -> RetrievalDataset:
    """The dataset of ``gt`` with images found in ``index``; query boxes checked against their images."""
    images = [ImageRef(n, index.path(n, listed_in=source)) for n in gt.imlist]
    queries = []
    for qn, db, rel, box in zip(gt.query_names, gt.query_db, gt.relevant, gt.boxes):
        image = images[db] if db is not None else ImageRef(qn, index.path(qn, listed_in=source))
        if box is not None:
            box = check_box(name, qn, box, image.size(), image.path)
        queries.append(Query(image=image, relevant=rel, db_index=db, box=box))
    return RetrievalDataset(name=name, images=images, queries=queries, protocol=gt.protocol,
                            crop_queries=crop_queries, meta=meta, fit_on=fit_on)
