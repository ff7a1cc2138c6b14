"""Distractor sets (Flickr 100k, revisitop 1M) appended to a benchmark's database.

Distractors are only ``ImageRef``s: nothing is read until features are extracted. Their names are
their paths under the distractor root without suffix, so they cannot collide across subfolders.
"""
from __future__ import annotations

import os
from pathlib import Path

from benchmarks.base import ImageRef, RetrievalDataset
from benchmarks.errors import DatasetError, missing_root
from benchmarks.imagefiles import list_images, strip_suffix

LAYOUT = """\
  DISTRACTORS_ROOT/             any folder tree of images, read recursively in sorted order
    oxc1_100k/<tag>/*.jpg       Flickr 100k (Oxford105k / Paris106k), from the 40 RAR parts
  or, for revisitop 1M:
    revisitop1m/jpg/<a>/<b>/*.jpg  with revisitop1m/revisitop1m.txt (paths relative to jpg/)"""


def load_distractors(root: Path | str, list_file: Path | str | None = None) -> list[ImageRef]:
    """The distractor images under ``root``: every image found recursively, sorted by relative path,
    or the entries of ``list_file`` (one path relative to ``root`` a line; ``.jpg`` added when the
    line has no suffix), each checked to exist."""
    root = Path(root)
    if not root.is_dir():
        raise missing_root("distractors", root, LAYOUT, None)
    if list_file is None:
        rels = list_images(root)
        if not rels:
            raise DatasetError(f"distractors: no images under {root}; expected layout:\n{LAYOUT}")
    else:
        rels = _read_list(Path(list_file), root)
    return [ImageRef(strip_suffix(rel), root / rel) for rel in rels]


def _read_list(list_file: Path, root: Path) -> list[str]:
    if not list_file.is_file():
        raise DatasetError(f"distractors: image list {list_file} does not exist")
    rels = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        rel = line.strip()
        if not rel or rel.startswith("#"):
            continue
        rel = rel if strip_suffix(rel) != rel else rel + ".jpg"
        if not os.path.isfile(root / rel):
            raise DatasetError(f"distractors: image {rel!r} listed in {list_file} is not in {root}; "
                               "the distractor folder is incomplete")
        rels.append(rel)
    return rels


def with_distractors(dataset: RetrievalDataset, root: Path | str,
                     list_file: Path | str | None = None) -> RetrievalDataset:
    """``dataset`` with the distractors appended to its database (query indices are unchanged)."""
    extra = load_distractors(root, list_file)
    names = {im.name for im in dataset.images}
    clash = next((im.name for im in extra if im.name in names), None)
    if clash is not None:
        raise DatasetError(f"{dataset.name}: distractor {clash!r} under {root} has the name of a "
                           "database image; is the distractor root the dataset itself?")
    return RetrievalDataset(name=dataset.name, images=dataset.images + extra, queries=dataset.queries,
                            protocol=dataset.protocol, crop_queries=dataset.crop_queries,
                            meta={**dataset.meta, "distractors": len(extra)}, fit_on=dataset.fit_on)
