"""Result records: one JSON line per evaluated configuration, with what is needed to trust it."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from importlib import metadata
from pathlib import Path

from benchmarks.errors import OutputError

#: keys that change how fast a run is or where it keeps things, not what it computes (left out of
#: the config hash); dotted keys are nested. store.dtype is semantic (float16 rounds features).
NON_SEMANTIC = ("device", "batch_size", "num_workers", "threads", "skip_existing", "top_k",
                "data_root", "experiment_name", "search_backend", "store.root", "store.chunk_size",
                "store.verify_checksums", "store.verify_images", "store.local_features")
log = logging.getLogger(__name__)
PACKAGES = ("torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "opencv-python-headless",
            "hydra-core", "deepagg")


#: top-level config keys left out of the hash at these values (the runs of versions without
#: them), so a sweep recorded before the key existed resumes instead of running again
NEUTRAL_NODES = {"map_at": [], "recall_at": []}
#: the same for keys inside a group: (group, key) -> the value that leaves it out
NEUTRAL_KEYS = {("codes", "rescore"): 0, ("postprocess", "whitening"): "pca",
                ("postprocess", "whiten_power"): 0.5, ("postprocess", "shrinkage"): 0.0}


def config_hash(cfg: dict) -> str:
    """12 hex digits over the resolved config, non-semantic keys and neutral values removed
    (``multiscale`` at the one scale 1, where its combination is never used; ``codes`` of kind
    none, whose other keys are then unused; NEUTRAL_KEYS at their values)."""
    cfg = {k: v for k, v in cfg.items() if not (k in NEUTRAL_NODES and v == NEUTRAL_NODES[k])
           and not (k == "multiscale" and isinstance(v, dict) and v.get("scales") == [1.0])
           and not (k == "codes" and isinstance(v, dict) and v.get("kind") == "none")}
    for (group, key), neutral in NEUTRAL_KEYS.items():
        node = cfg.get(group)
        if isinstance(node, dict) and key in node and node[key] == neutral:
            cfg[group] = {k: v for k, v in node.items() if k != key}
    return hashlib.sha1(json.dumps(_semantic(cfg), sort_keys=True, default=str).encode()).hexdigest()[:12]


def _semantic(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if key in NON_SEMANTIC:
            continue
        out[k] = _semantic(v, key + ".") if isinstance(v, dict) else v
    return out


def library_versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def completed(record: dict) -> bool:
    """Whether a record is of a configuration that was evaluated (not one that failed or
    crashed in a sweep: those carry ``status`` and an ``error``, and no metrics)."""
    return record.get("status", "ok") == "ok"


def read_records(path: Path) -> list[dict]:
    """Records of one results.jsonl. A line that is not a whole JSON record (the torn tail of a
    killed writer), or a record without metrics that is not a failed configuration's, is skipped
    with a warning naming the file and the line; no record is lost."""
    out = []
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s, line %d: not a whole record (a run killed while writing it?); "
                            "skipped", path, n)
                continue
            if not isinstance(record, dict) or not (
                    isinstance(record.get("metrics"), dict) or not completed(record)):
                log.warning("%s, line %d: not a result record (no metrics); skipped", path, n)
                continue
            out.append(record)
    return out


def append_record(path: Path, record: dict) -> None:
    """Append one record as a single line, under a lock, flushed and fsynced. A torn last line
    (no newline: a writer was killed) is first moved to ``PATH.torn`` (kept for inspection), so
    it never swallows this record and later reads of the file warn about nothing."""
    from filelock import FileLock
    line = json.dumps(record, default=_jsonable) + "\n"
    try:
        _append(path, line, FileLock(str(path) + ".lock"))
    except OSError as e:
        raise OutputError(f"cannot write the result record into {path} ({e.strerror or e}); free "
                          "space (or fix the folder's permissions) and run again: the stored "
                          "features and fits are kept") from e


def _append(path: Path, line: str, lock) -> None:
    with lock:
        with open(path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            if end > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":   # a torn tail: move it to PATH.torn, once, under the lock
                    f.seek(0)
                    data = f.read()
                    keep = data.rfind(b"\n") + 1
                    torn = Path(str(path) + ".torn")
                    with open(torn, "ab") as t:
                        t.write(data[keep:] + b"\n")
                        t.flush()
                        os.fsync(t.fileno())
                    f.truncate(keep)
                    log.warning("%s ended with a torn record (a killed writer): moved to %s, "
                                "the results are whole again", path, torn)
            f.seek(0, os.SEEK_END)
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())


def newest_by_hash(directory: Path) -> dict:
    """config hash -> (the record that stands for it, the results.jsonl holding it), over every
    results.jsonl under ``directory`` (found by scanning, so a moved folder still resolves): the
    newest completed record, else the newest failure. Records without a hash keep their own."""
    by_hash: dict = {}
    for p in sorted(Path(directory).rglob("results.jsonl")):
        for r in read_records(p):
            key = r.get("config_hash", id(r))
            if key not in by_hash or _supersedes(r, by_hash[key][0]):
                by_hash[key] = (r, p)
    return by_hash


def gather(directory: Path) -> list[dict]:
    """Every record under ``directory`` (recursively), one per config hash (``newest_by_hash``);
    ordered by dataset, extractor, aggregator, dimension and re-ranking (none first)."""
    return sorted((r for r, _ in newest_by_hash(directory).values()), key=lambda r: (
        str(r.get("dataset")), str(r.get("extractor")), str(r.get("aggregator")), r.get("dim") or 0,
        (r.get("rerank") or "none") != "none", str(r.get("rerank") or "")))


def _supersedes(new: dict, old: dict) -> bool:
    """Whether ``new`` replaces ``old`` (same config hash): a completed record always beats a
    failure (a failure after the evaluation, e.g. while writing figures, hides no result), then
    the newer one wins."""
    if completed(new) != completed(old):
        return completed(new)
    return new.get("timestamp", "") >= old.get("timestamp", "")


def _jsonable(x):
    import numpy as np
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
