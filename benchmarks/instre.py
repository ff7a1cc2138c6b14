"""INSTRE (Wang & Jiang 2015) in the retrieval split of Iscen et al. (CVPR 2017, diffusion), the one
every later INSTRE number uses.

Ground truth: ``gnd_instre.mat`` (MATLAB v5), ``imlist`` (27,293 database images), ``qimlist``
(1,250 query images, none of them in the database) and a struct array ``gnd`` with per query ``ok``
(1-based database indices) and ``bbx`` (x1, y1, x2, y2 in pixels). Image names are paths relative
to the INSTRE folder with their suffix (``INSTRE-S1/<class>/<nnn>.jpg``). Scored with the
``oxford`` protocol: positives = ok, no junk, mAP; queries are cropped to their box, as the
split's authors did. The per-image ``.txt`` box files beside the images are not read.
"""
from __future__ import annotations

from pathlib import Path

from benchmarks.base import RetrievalDataset
from benchmarks.errors import DatasetError, missing_root
from benchmarks.ground_truth import GroundTruth, build_dataset, read_ground_truth
from benchmarks.imagefiles import ImageIndex

LAYOUT = """\
  ROOT/INSTRE-S1/<class>/<nnn>.jpg   single objects (instre.tar.gz, extracted into ROOT)
  ROOT/INSTRE-S2/<class>/<nnn>.jpg   single objects
  ROOT/INSTRE-M/<class>/<nnn>.jpg    pairs of objects
  ROOT/gnd_instre.mat                Iscen et al.'s split: imlist, qimlist, gnd(i).ok / .bbx"""


def load_instre(root: str | Path, name: str = "instre", ground_truth: str = "gnd_instre.mat",
                crop_queries: bool = True, fit_on: str | None = None) -> RetrievalDataset:
    """INSTRE from ``root``.

    ground_truth: the split's .mat (or the same content as .json / .pkl, 0-based there), relative
                  to ``root`` or absolute.
    crop_queries: crop each query to its ``bbx`` (the protocol's rule; switch off to study it).
    fit_on:       the set to learn PCA / codebooks on by default (``RetrievalDataset.fit_on``).
    """
    root = Path(root)
    if not root.is_dir():
        raise missing_root(name, root, LAYOUT, "instre")
    gt_path = root / ground_truth
    if not gt_path.is_file():
        raise DatasetError(f"{name}: ground-truth file {gt_path} does not exist; get it with "
                           f"`deepagg-download instre --root {root}`. Expected layout:\n{LAYOUT}")
    gt = read_ground_truth(gt_path)
    if gt.protocol != "oxford":
        raise DatasetError(f"{name}: {gt_path} has easy/hard lists, not INSTRE's ok lists: it is "
                           "another benchmark's ground truth")
    _check_folders(name, root, gt, gt_path)
    return build_dataset(name, gt, ImageIndex(root, name), gt_path, crop_queries=crop_queries,
                         meta={"crop_queries": crop_queries, "ground_truth": Path(ground_truth).name},
                         fit_on=fit_on)


def _check_folders(name: str, root: Path, gt: GroundTruth, gt_path: Path) -> None:
    """Every top folder the image names start with (INSTRE-S1, ...) exists under ``root``; else a
    DatasetError naming it, and the folder one level down that holds it, if any (an archive
    extracted into a folder of its own)."""
    tops = sorted({n.split("/", 1)[0] for n in gt.imlist + gt.query_names if "/" in n})
    missing = [t for t in tops if not (root / t).is_dir()]
    if not missing:
        return
    nested = sorted(p.parent for p in root.glob(f"*/{missing[0]}") if p.is_dir())
    hint = (f"; {nested[0]} holds it: set dataset.root to {nested[0]}" if nested
            else f"; get the images with `deepagg-download instre --root {root}`")
    raise DatasetError(f"{name}: image folder {root / missing[0]} (named by {gt_path}) does not "
                       f"exist{hint}. Expected layout:\n{LAYOUT}")
