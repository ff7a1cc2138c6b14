"""Result records: one JSON line per evaluated configuration, with what is needed to trust it."""
from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

#: keys that change how fast a run is, not what it computes (left out of the config hash)
NON_SEMANTIC = ("device", "batch_size", "num_workers", "skip_existing", "top_k", "store",
                "data_root", "experiment_name")
PACKAGES = ("torch", "torchvision", "timm", "numpy", "scipy", "scikit-learn", "opencv-python-headless",
            "hydra-core", "deepagg")


def config_hash(cfg: dict) -> str:
    """12 hex digits over the resolved config, non-semantic keys removed."""
    semantic = {k: v for k, v in cfg.items() if k not in NON_SEMANTIC}
    return hashlib.sha1(json.dumps(semantic, sort_keys=True, default=str).encode()).hexdigest()[:12]


def library_versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def read_records(path: Path) -> list[dict]:
    """Records of one results.jsonl (a torn last line from a killed run is skipped)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def append_record(path: Path, record: dict) -> None:
    """Append one record as a single line, flushed and fsynced."""
    import os
    with open(path, "a") as f:
        f.write(json.dumps(record, default=_jsonable) + "\n")
        f.flush()
        os.fsync(f.fileno())


def gather(directory: Path) -> list[dict]:
    """Every record under ``directory`` (recursively), the newest per config hash, ordered by
    dataset, extractor, aggregator and dimension."""
    by_hash: dict[str, dict] = {}
    for p in sorted(Path(directory).rglob("results.jsonl")):
        for r in read_records(p):
            key = r.get("config_hash", id(r))
            if key not in by_hash or r.get("timestamp", "") >= by_hash[key].get("timestamp", ""):
                by_hash[key] = r
    return sorted(by_hash.values(), key=lambda r: (str(r.get("dataset")), str(r.get("extractor")),
                                                   str(r.get("aggregator")), r.get("dim") or 0))


def _jsonable(x):
    import numpy as np
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
