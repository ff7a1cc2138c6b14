"""The on-disk naming of the feature store, in one place: where an entry, its manifest, chunks,
locks and set-aside files live under ``root/<dataset>/<key>/`` (the package docstring says what
each holds). The store and ``deepagg-store`` both read it; neither spells a name itself."""
from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Iterator

MANIFEST = "manifest.json"
RECORD = "record.json"
LOCKS = "locks"
SET_ASIDE = "set_aside"
CHUNK_PREFIX = "chunk_"
TMP_MARK = ".tmp"


def chunk_name(index: int) -> str:
    """``chunk_00007``: the folder of chunk ``index``."""
    return f"{CHUNK_PREFIX}{index:05d}"


def chunk_index(path: Path) -> int | None:
    """The index of a complete chunk folder, None for anything else (temporary folders too)."""
    digits = path.name.removeprefix(CHUNK_PREFIX)
    return int(digits) if path.name.startswith(CHUNK_PREFIX) and digits.isdigit() else None


def chunk_dirs(entry: Path) -> list[Path]:
    """The complete chunk folders of an entry, in index order."""
    return sorted(p for p in entry.glob(f"{CHUNK_PREFIX}*") if p.is_dir() and chunk_index(p) is not None)


def temporary_dirs(entry: Path, index: int) -> list[Path]:
    """Temporary folders of writers of chunk ``index`` (``chunk_N.tmp-HOST-PID-RAND``)."""
    return sorted(entry.glob(chunk_name(index) + TMP_MARK + "*"))


def lock_path(entry: Path, index: int) -> Path:
    """The lock file of chunk ``index``."""
    return entry / LOCKS / f"{chunk_name(index)}.lock"


def entries(root: Path) -> Iterator[tuple[str, Path, dict | None]]:
    """(dataset, entry folder, manifest or None when unreadable) of every entry under ``root``."""
    for manifest in sorted(Path(root).glob(f"*/*/{MANIFEST}")):
        try:
            yield manifest.parent.parent.name, manifest.parent, json.loads(manifest.read_text())
        except (OSError, ValueError):
            yield manifest.parent.parent.name, manifest.parent, None


def set_aside_dirs(root: Path) -> list[Path]:
    """The set-aside folders of every entry under ``root``."""
    return sorted(Path(root).glob(f"*/*/{SET_ASIDE}"))


def set_aside(entry: Path, path: Path) -> Path:
    """Move ``path`` (a chunk folder or the manifest) into the entry's set-aside folder under a
    unique, timestamped name; returns where it went (FileNotFoundError if it is gone)."""
    aside = entry / SET_ASIDE
    aside.mkdir(exist_ok=True)
    target = aside / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    os.rename(path, target)
    return target
