"""Google Landmarks Dataset v2, retrieval task (Weyand et al., CVPR 2020), in its official layout.

The index (761,757 images) is the database; the test images with a retrieval solution in the
chosen split are the queries (never database images: extracted on their own). Scored with the
``gldv2`` protocol: each query's positives are its solution's index images, no junk, and
``mAP@100`` (denominator min(#positives, 100)) is reported beside the usual metrics.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.errors import DatasetError, missing_root

LAYOUT = """\
  ROOT/index/<a>/<b>/<c>/<id>.jpg   the index images (a, b, c: the id's first three characters)
  ROOT/test/<a>/<b>/<c>/<id>.jpg    the test images
  ROOT/index.csv                     column id: the index images
  ROOT/test.csv                      column id: the test images
  ROOT/retrieval_solution_v2.1.csv   columns id, images (space-separated index ids), Usage
                                     (Public, Private or Ignored)"""
SPLITS = {"private": ("Private",), "public": ("Public",), "all": ("Public", "Private")}


def image_path(folder: Path, image_id: str) -> Path:
    """The official location of image ``image_id`` under ``folder`` (index/ or test/)."""
    return folder / image_id[0] / image_id[1] / image_id[2] / f"{image_id}.jpg"


def read_ids(path: Path, owner: str) -> list[str]:
    """The ``id`` column of a GLDv2 CSV, in file order; DatasetError naming the file otherwise."""
    if not path.is_file():
        raise DatasetError(f"{owner}: {path} does not exist; expected layout:\n{LAYOUT}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise DatasetError(f"{owner}: {path} has no 'id' column (its header: "
                               f"{reader.fieldnames}); is it a GLDv2 file?")
        ids = [row["id"] for row in reader]
    if len(set(ids)) < len(ids):
        raise DatasetError(f"{owner}: {path} lists an id more than once")
    return ids


def load_gldv2(root: str | Path, split: str = "private", name: str = "gldv2",
               index_csv: str = "index.csv", test_csv: str = "test.csv",
               solution_csv: str = "retrieval_solution_v2.1.csv",
               fit_on: str | None = None) -> RetrievalDataset:
    """GLDv2 retrieval: the index as the database, the test images with a solution in ``split``
    (private: the final leaderboard's; public; all = both) as the queries, in test.csv order."""
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"{name}: split={split!r}; expected one of {list(SPLITS)}")
    if not root.is_dir():
        raise missing_root(name, root, LAYOUT, "gldv2")
    index_ids = read_ids(root / index_csv, name)
    test_ids = read_ids(root / test_csv, name)
    position = {image_id: i for i, image_id in enumerate(index_ids)}
    solutions = read_solution(root / solution_csv, name, position, set(test_ids), SPLITS[split])
    images = [ImageRef(i, image_path(root / "index", i)) for i in index_ids]
    queries = [Query(image=ImageRef(t, image_path(root / "test", t)),
                     relevant={"ok": solutions[t], "junk": np.zeros(0, np.int64)})
               for t in test_ids if t in solutions]
    if not queries:
        raise DatasetError(f"{name}: no test image of {root / solution_csv} is in split {split!r}")
    return RetrievalDataset(name=name, images=images, queries=queries, protocol="gldv2",
                            meta={"split": split, "ground_truth": solution_csv}, fit_on=fit_on)


def read_solution(path: Path, owner: str, position: dict[str, int], test_ids: set[str],
                  usages: tuple[str, ...]) -> dict[str, np.ndarray]:
    """{test id: sorted database indices of its solution} for the rows whose Usage is in
    ``usages``; an id that is no test image, or a solution image that is no index image, stops
    with the file and the line."""
    if not path.is_file():
        raise DatasetError(f"{owner}: ground-truth file {path} does not exist; expected layout:\n{LAYOUT}")
    out: dict[str, np.ndarray] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"id", "images", "Usage"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{owner}: {path} has no column {', '.join(sorted(missing))} (its "
                               f"header: {reader.fieldnames}); expected id, images, Usage")
        for line, row in enumerate(reader, start=2):
            if row["Usage"] not in usages:
                continue
            if row["id"] not in test_ids:
                raise DatasetError(f"{owner}: {path} line {line}: {row['id']!r} is not a test "
                                   "image (not in test.csv)")
            unknown = [i for i in row["images"].split() if i not in position]
            if unknown:
                more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
                raise DatasetError(f"{owner}: {path} line {line}: {unknown[0]!r} is not an index "
                                   f"image (not in index.csv){more}")
            out[row["id"]] = np.unique(np.array([position[i] for i in row["images"].split()],
                                                dtype=np.int64))
    return out
