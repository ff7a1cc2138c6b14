"""Oxford5k and Paris6k in their official layout, optionally with the Flickr 100k distractors.

Ground truth: the official ``gt_files`` folder, per query ``LANDMARK_N_query.txt`` (image name and
box; Oxford names carry an ``oxc1_`` prefix) and ``LANDMARK_N_good.txt`` / ``_ok.txt`` /
``_junk.txt``. Protocol "oxford": positives = good + ok, junk ignored in the ranking.
The database is every image of the folder, sorted by name (5,063 Oxford, 6,392 Paris once
the 20 corrupt files of the Paris archive are excluded).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.distractors import with_distractors
from benchmarks.errors import DatasetError, missing_root
from benchmarks.imagefiles import ImageIndex, check_box

LANDMARKS = {
    "oxford5k": ("all_souls", "ashmolean", "balliol", "bodleian", "christ_church", "cornmarket",
                 "hertford", "keble", "magdalen", "pitt_rivers", "radcliffe_camera"),
    "paris6k": ("defense", "eiffel", "invalides", "louvre", "moulinrouge", "museedorsay", "notredame",
                "pantheon", "pompidou", "sacrecoeur", "triomphe"),
}

LAYOUT = """\
  ROOT/jpg/*.jpg                 the images (Paris: the archive's paris/<landmark>/ subfolders are fine)
  ROOT/gt_files/LANDMARK_N_query.txt, _good.txt, _ok.txt, _junk.txt   the official ground truth"""

_QUERY_FILE = re.compile(r"^(?P<landmark>[a-z_]+)_(?P<number>\d+)_query\.txt$")


def load_oxford5k(root: str | Path, name: str = "oxford5k", crop_queries: bool = False,
                  exclude: Sequence[str] = (), distractors_root: str | Path | None = None,
                  distractors_list: str | Path | None = None, fit_on: str | None = None
                  ) -> RetrievalDataset:
    """Oxford5k (Oxford105k with ``distractors_root``); see ``load_buildings``."""
    return load_buildings("oxford5k", root, name, crop_queries, exclude, distractors_root,
                          distractors_list, fit_on)


def load_paris6k(root: str | Path, name: str = "paris6k", crop_queries: bool = False,
                 exclude: Sequence[str] = (), distractors_root: str | Path | None = None,
                 distractors_list: str | Path | None = None, fit_on: str | None = None
                 ) -> RetrievalDataset:
    """Paris6k (Paris106k with ``distractors_root``); see ``load_buildings``."""
    return load_buildings("paris6k", root, name, crop_queries, exclude, distractors_root,
                          distractors_list, fit_on)


def load_buildings(which: str, root: str | Path, name: str, crop_queries: bool = False,
                   exclude: Sequence[str] = (), distractors_root: str | Path | None = None,
                   distractors_list: str | Path | None = None, fit_on: str | None = None
                   ) -> RetrievalDataset:
    """Oxford5k or Paris6k (``which``) from ``root``.

    crop_queries:     crop each query to its box (later work) or not (the paper's main table).
    exclude:          image names left out of the database (Paris: its 20 unreadable files).
    distractors_root: a folder of distractor images appended to the database (105k / 106k).
    distractors_list: optional list of the distractor files (see ``benchmarks.distractors``).
    fit_on:           the conventional fitting set (``RetrievalDataset.fit_on``).
    """
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, LAYOUT, which)
    for sub in ("jpg", "gt_files"):
        if not (root / sub).is_dir():
            raise DatasetError(f"{name}: {root / sub} does not exist; expected layout:\n{LAYOUT}")
    index = ImageIndex(root / "jpg", name)
    excluded = set(exclude)
    names = [n for n in index.stems() if n not in excluded]
    _check_images_are(which, name, names, root / "jpg")
    position = {n: i for i, n in enumerate(names)}
    images = [ImageRef(n, index.path(n)) for n in names]
    queries = [_read_query(name, f, position, excluded, images) for f in _query_files(which, name, root)]
    ds = RetrievalDataset(name=name, images=images, queries=queries, protocol="oxford",
                          crop_queries=crop_queries, fit_on=fit_on,
                          meta={"crop_queries": crop_queries, "excluded": sorted(excluded)})
    return with_distractors(ds, distractors_root, distractors_list) if distractors_root else ds



def _check_images_are(which: str, name: str, names: list[str], folder: Path) -> None:
    if not names:
        raise DatasetError(f"{name}: no images in {folder}; expected layout:\n{LAYOUT}")
    paris = sum(n.startswith("paris_") for n in names)
    if which == "oxford5k" and paris:
        raise DatasetError(f"{name}: {folder} holds Paris images ({paris} named paris_*), "
                           "not Oxford ones: point the root at the Oxford5k folder")
    if which == "paris6k" and paris < len(names):
        stray = next(n for n in names if not n.startswith("paris_"))
        raise DatasetError(f"{name}: {folder} holds images that are not Paris6k ({stray!r}; Paris names "
                           "start with paris_): is this the Oxford folder?")


def _query_files(which: str, name: str, root: Path) -> list[Path]:
    """The ``*_query.txt`` files, by landmark then query number; other datasets' files refused."""
    found = []
    for f in (root / "gt_files").glob("*_query.txt"):
        m = _QUERY_FILE.match(f.name)
        if m is None:
            raise DatasetError(f"{name}: unexpected ground-truth file {f}; query files are named "
                               "LANDMARK_N_query.txt")
        landmark = m["landmark"]
        if landmark not in LANDMARKS[which]:
            other = next((k for k, v in LANDMARKS.items() if landmark in v), None)
            hint = (f"it belongs to {other}: this root holds {other}'s ground truth" if other
                    else f"{which} has no landmark {landmark!r}")
            raise DatasetError(f"{name}: unexpected ground-truth file {f}; {hint}")
        found.append((LANDMARKS[which].index(landmark), int(m["number"]), f))
    if not found:
        raise DatasetError(f"{name}: no *_query.txt file in {root / 'gt_files'}; expected layout:\n{LAYOUT}")
    return [f for *_, f in sorted(found)]


def _read_query(name: str, query_file: Path, position: dict[str, int], excluded: set[str],
                images: list[ImageRef]) -> Query:
    fields = query_file.read_text().split()
    if len(fields) != 5:
        raise DatasetError(f"{name}: {query_file} should hold one line 'IMAGE x1 y1 x2 y2', "
                           f"found {' '.join(fields)!r}")
    qname = fields[0].removeprefix("oxc1_")
    if qname not in position:
        raise DatasetError(f"{name}: query image {qname!r} of {query_file} is not among the images")
    stem = query_file.name.removesuffix("_query.txt")
    good, ok, junk = (_read_list(name, query_file.with_name(f"{stem}_{k}.txt"), position, excluded)
                      for k in ("good", "ok", "junk"))
    db = position[qname]
    box = check_box(name, qname, fields[1:], images[db].size(), images[db].path)
    return Query(image=images[db], relevant={"ok": np.union1d(good, ok), "junk": junk}, db_index=db, box=box)


def _read_list(name: str, path: Path, position: dict[str, int], excluded: set[str]) -> np.ndarray:
    """Database indices of the names in ``path`` (excluded images dropped)."""
    if not path.is_file():
        raise DatasetError(f"{name}: ground-truth file {path} does not exist")
    idx = []
    for n in path.read_text().split():
        n = n.removeprefix("oxc1_")
        if n in excluded:
            continue
        if n not in position:
            raise DatasetError(f"{name}: image {n!r} listed in {path} is not among the images")
        idx.append(position[n])
    return np.unique(np.asarray(idx, dtype=np.int64))
