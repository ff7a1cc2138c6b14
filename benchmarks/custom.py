"""Your own benchmark: a folder of images plus a ground-truth file in the revisitop schema, or
three CSV files (database, queries, relevance: ``load_custom_csv``).

The schema and its three encodings (pickle, JSON, .mat) are described in ``benchmarks.ground_truth``
and docs/datasets.md. easy/hard/junk lists select the revisited protocol, ok/junk the Oxford one.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.base import RetrievalDataset
from benchmarks.errors import DatasetError, missing_root
from benchmarks.ground_truth import build_dataset, read_csv_ground_truth, read_ground_truth
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
