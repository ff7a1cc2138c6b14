"""UKBench (Nistér & Stewénius 2006): 10,200 images, 2,550 objects x 4 views.

Images ``ROOT/full/ukbenchNNNNN.jpg`` (or directly under ROOT); the object is the number // 4.
Every image is a query; protocol "ukbench": the N-S score (group members in the top 4, the query
included, max 4.00), plus mAP with the query itself as junk.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.base import ImageRef, Query, RetrievalDataset
from benchmarks.imagefiles import flat_benchmark_folder

LAYOUT = """\
  ROOT/full/ukbench00000.jpg ... ukbench10199.jpg   (images directly under ROOT also work)"""

_NAME = re.compile(r"^ukbench(\d{5})$")


def load_ukbench(root: str | Path, name: str = "ukbench", fit_on: str | None = None) -> RetrievalDataset:
    """UKBench from ``root``; incomplete groups are kept (their present members are the positives).
    ``fit_on``: the conventional fitting set (``RetrievalDataset.fit_on``)."""
    folder, index, names = flat_benchmark_folder(
        Path(root), "full", name, LAYOUT, "ukbench", lambda n: bool(_NAME.match(n)),
        "UKBench image name (ukbenchNNNNN.jpg)")
    images = [ImageRef(n, index.path(n)) for n in names]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(names):
        groups[int(n[7:]) // 4].append(i)
    queries = []
    for i, n in enumerate(names):
        others = [j for j in groups[int(n[7:]) // 4] if j != i]
        queries.append(Query(image=images[i], db_index=i,
                             relevant={"ok": np.asarray(others, dtype=np.int64),
                                       "junk": np.zeros(0, dtype=np.int64)}))
    incomplete = sum(len(g) != 4 for g in groups.values())
    return RetrievalDataset(name=name, images=images, queries=queries, protocol="ukbench", fit_on=fit_on,
                            meta={"incomplete_groups": incomplete})
