"""Revisited Oxford and Paris (Radenović et al. 2018), optionally with the revisitop 1M distractors.

Ground truth: ``gnd_roxford5k.pkl`` / ``gnd_rparis6k.pkl`` (read with the restricted unpickler),
images ``ROOT/jpg/NAME.jpg`` (subfolders allowed). Protocol "revisited": Easy / Medium / Hard mAP
and mP@k; queries are cropped to their box, as the protocol mandates.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.base import RetrievalDataset
from benchmarks.distractors import with_distractors
from benchmarks.errors import DatasetError, missing_root
from benchmarks.ground_truth import build_dataset, read_ground_truth
from benchmarks.imagefiles import ImageIndex

LAYOUT = """\
  ROOT/jpg/NAME.jpg           the Oxford (or Paris) building images
  ROOT/gnd_roxford5k.pkl      (or gnd_rparis6k.pkl) the revisited ground truth"""

_OTHER = {"roxford5k": "rparis6k", "rparis6k": "roxford5k"}


def load_roxford5k(root: str | Path, name: str = "roxford5k", gnd_file: str = "gnd_roxford5k.pkl",
                   crop_queries: bool = True, distractors_root: str | Path | None = None,
                   distractors_list: str | Path | None = None, fit_on: str | None = None
                   ) -> RetrievalDataset:
    """Revisited Oxford (ROxford5k, +R1M with ``distractors_root``); see ``load_revisited``."""
    return load_revisited("roxford5k", root, name, gnd_file, crop_queries, distractors_root,
                          distractors_list, fit_on)


def load_rparis6k(root: str | Path, name: str = "rparis6k", gnd_file: str = "gnd_rparis6k.pkl",
                  crop_queries: bool = True, distractors_root: str | Path | None = None,
                  distractors_list: str | Path | None = None, fit_on: str | None = None
                  ) -> RetrievalDataset:
    """Revisited Paris (RParis6k, +R1M with ``distractors_root``); see ``load_revisited``."""
    return load_revisited("rparis6k", root, name, gnd_file, crop_queries, distractors_root,
                          distractors_list, fit_on)


def load_revisited(which: str, root: str | Path, name: str, gnd_file: str, crop_queries: bool = True,
                   distractors_root: str | Path | None = None,
                   distractors_list: str | Path | None = None, fit_on: str | None = None
                   ) -> RetrievalDataset:
    """ROxford5k or RParis6k (``which``) from ``root``.

    gnd_file:         the ground-truth pickle (.pkl), JSON or .mat, relative to ``root`` or absolute.
    crop_queries:     crop each query to its box (the protocol's rule; switch off to study it).
    distractors_root: a folder of distractor images (revisitop 1M) appended to the database.
    distractors_list: its image list (``revisitop1m.txt``), which spares a walk of 1M files.
    fit_on:           the conventional fitting set (``RetrievalDataset.fit_on``).
    """
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, LAYOUT, which)
    gnd_path = root / gnd_file
    if not gnd_path.is_file():
        other = root / f"gnd_{_OTHER[which]}.pkl"
        hint = (f"; this root holds {other.name}: it is the {_OTHER[which]} folder" if other.is_file()
                else f"; get it with `deepagg-download {which} --root {root}`")
        raise DatasetError(f"{name}: ground-truth file {gnd_path} does not exist{hint}")
    if not (root / "jpg").is_dir():
        raise DatasetError(f"{name}: image folder {root / 'jpg'} does not exist; expected layout:\n{LAYOUT}")
    gt = read_ground_truth(gnd_path)
    if gt.protocol != "revisited":
        raise DatasetError(f"{name}: {gnd_path} has ok/junk lists, not the revisited easy/hard/junk ones")
    paris = sum(n.startswith("paris_") for n in gt.imlist)
    if paris != (len(gt.imlist) if which == "rparis6k" else 0):
        raise DatasetError(f"{name}: {gnd_path} is not the {which} ground truth: {paris} of its "
                           f"{len(gt.imlist)} images are Paris ones (named paris_*)")
    ds = build_dataset(name, gt, ImageIndex(root / "jpg", name), gnd_path, crop_queries=crop_queries,
                       meta={"crop_queries": crop_queries}, fit_on=fit_on)
    return with_distractors(ds, distractors_root, distractors_list) if distractors_root else ds
