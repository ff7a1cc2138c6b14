"""INRIA Holidays (Jégou et al. 2008) in its official layout, optionally with rotations.

Images ``ROOT/jpg/NNNNNN.jpg``: the group is the name's first four digits (name // 100), the
group's first image (sorted) is its query. Protocol "holidays": positives = the rest of the group,
the query itself is junk (out of its own ranking). Some photos are stored sideways; the paper used
a manually rotated copy: ``rotate`` / ``rotation_file`` turn listed images upright on loading.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from pathlib import Path

import numpy as np

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.errors import DatasetError
from benchmarks.imagefiles import flat_benchmark_folder, strip_suffix

LAYOUT = """\
  ROOT/jpg/100000.jpg ... 149903.jpg    the 1,491 images (images directly under ROOT also work)
  ROOT/rotations.txt                    optional, for holidays_rotated: lines 'NAME DEGREES'"""


def load_holidays(root: str | Path, name: str = "holidays",
                  rotate: Sequence[str] | Mapping[str, int] = (),
                  rotation_file: str | Path | None = None, fit_on: str | None = None) -> RetrievalDataset:
    """Holidays from ``root``.

    rotate:        images to turn upright: a list of names (each turned 90 degrees counter-clockwise)
                   or a mapping name -> counter-clockwise degrees (multiples of 90).
    rotation_file: a text file of 'NAME DEGREES' lines (same meaning; '#' comments allowed),
                   relative to ``root`` or absolute; its entries override ``rotate``.
    fit_on:        the conventional fitting set (``RetrievalDataset.fit_on``).
    """
    root = Path(root)
    folder, index, names = flat_benchmark_folder(
        root, "jpg", name, LAYOUT, "holidays", lambda n: n.isdigit() and len(n) == 6,
        "Holidays image name (six digits, like 100000.jpg)")
    rotations = _rotations(name, rotate, rotation_file and root / rotation_file)
    unknown = sorted(set(rotations) - set(names))
    if unknown:
        raise DatasetError(f"{name}: images to rotate are not in {folder}: {unknown[:5]}")
    images = [ImageRef(n, index.path(n), rotate=rotations.get(n, 0)) for n in names]
    queries = []
    for _, members in groupby(range(len(names)), key=lambda i: int(names[i]) // 100):
        q, *rest = members
        queries.append(Query(image=images[q], relevant={"ok": np.asarray(rest, dtype=np.int64),
                                                        "junk": np.asarray([q], dtype=np.int64)},
                             db_index=q))
    return RetrievalDataset(name=name, images=images, queries=queries, protocol="holidays", fit_on=fit_on,
                            meta={"rotations": dict(sorted((k, v) for k, v in rotations.items() if v))})


def read_rotation_file(path: Path) -> dict[str, int]:
    """{name: counter-clockwise degrees} from 'NAME DEGREES' lines ('100501.jpg 90' or '100501 -90')."""
    if not path.is_file():
        raise DatasetError(f"rotation file {path} does not exist; write one 'NAME DEGREES' line per "
                           "sideways image (docs/datasets.md)")
    out = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        try:
            image, degrees = fields
            out[strip_suffix(image)] = _degrees(int(degrees))
        except ValueError:
            raise DatasetError(f"rotation file {path}, line {i}: expected 'NAME DEGREES' with DEGREES a "
                               f"multiple of 90, found {line.strip()!r}") from None
    return out



def _rotations(name: str, rotate, rotation_file: Path | None) -> dict[str, int]:
    if isinstance(rotate, str):
        raise DatasetError(f"{name}: rotate must be a list of names or a mapping name -> degrees, "
                           f"not the string {rotate!r} (use rotation_file for a file)")
    try:
        out = ({strip_suffix(str(k)): _degrees(int(v)) for k, v in rotate.items()}
               if isinstance(rotate, Mapping) else {strip_suffix(str(k)): 90 for k in rotate})
    except ValueError as e:
        raise DatasetError(f"{name}: bad rotate entry ({e}); degrees must be multiples of 90") from None
    return {**out, **(read_rotation_file(rotation_file) if rotation_file else {})}


def _degrees(value: int) -> int:
    if value % 90:
        raise ValueError(f"{value} is not a multiple of 90")
    return value % 360
