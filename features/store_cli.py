"""``deepagg-store``: look into a feature store and check it.

    deepagg-store list   [--root ROOT]            entries: dataset, key, images, chunks, size
    deepagg-store verify [--root ROOT] [--set-aside]
                                                  every chunk against its record (sizes, shapes,
                                                  CRC-32); --set-aside moves bad chunks away so
                                                  that the next run re-extracts them

ROOT defaults to $DEEPAGG_STORE, else ~/.cache/deepagg/store (as deepagg-run). Exit code 0 when
every chunk is sound, 1 when some are not, 2 for a wrong root.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

from features.store import ARRAYS, RECORD, file_crc32


def default_root() -> Path:
    env = os.environ.get("DEEPAGG_STORE")
    return Path(env) if env else Path.home() / ".cache" / "deepagg" / "store"


def entries(root: Path):
    """(dataset, key folder, manifest) of every entry under ``root``."""
    for manifest in sorted(root.glob("*/*/manifest.json")):
        try:
            yield manifest.parent.parent.name, manifest.parent, json.loads(manifest.read_text())
        except (OSError, ValueError):
            yield manifest.parent.parent.name, manifest.parent, None


def chunk_problem(chunk: Path) -> str | None:
    """What is wrong with a chunk compared with its own record (None: sound)."""
    try:
        record = json.loads((chunk / RECORD).read_text())
    except FileNotFoundError:
        return "no record.json (written by an earlier version: the next run checks and adopts it)"
    except (OSError, ValueError) as e:
        return f"unreadable record.json ({e})"
    for name in ARRAYS:
        meta = record.get("files", {}).get(name)
        f = chunk / name
        if meta is None:
            return f"the record does not describe {name}"
        if not f.exists():
            return f"{name} is missing"
        if f.stat().st_size != meta["bytes"]:
            return f"{name} has {f.stat().st_size} bytes, {meta['bytes']} were written"
        if file_crc32(f) != meta["crc32"]:
            return f"{name} does not match its checksum"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepagg-store", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("list", "verify"))
    parser.add_argument("--root", type=Path, default=None, help="the store (default $DEEPAGG_STORE)")
    parser.add_argument("--set-aside", action="store_true", help="move bad chunks to set_aside/")
    args = parser.parse_args(argv)
    root = (args.root or default_root()).expanduser()
    if not root.is_dir():
        print(f"deepagg-store: error: no store at {root} (set --root or $DEEPAGG_STORE)", file=sys.stderr)
        return 2
    bad = 0
    for dataset, entry, manifest in entries(root):
        chunks = sorted(p for p in entry.glob("chunk_*") if p.is_dir() and ".tmp" not in p.name)
        if args.command == "list":
            size = sum(f.stat().st_size for c in chunks for f in c.iterdir()) / 2 ** 20
            n = manifest.get("n_images", "?") if manifest else "? (unreadable manifest)"
            print(f"{dataset:20s} {entry.name}  {n} images  {len(chunks)} chunks  {size:,.1f} MiB")
            continue
        for chunk in chunks:
            problem = chunk_problem(chunk)
            if problem is None:
                continue
            bad += "earlier version" not in problem
            print(f"{chunk}: {problem}")
            if args.set_aside and "earlier version" not in problem:
                aside = entry / "set_aside"
                aside.mkdir(exist_ok=True)
                target = aside / f"{chunk.name}.verify-{uuid.uuid4().hex[:6]}"
                os.rename(chunk, target)
                print(f"  moved to {target}; the next run extracts it again")
    if args.command == "verify":
        print(f"{bad} bad chunk(s) under {root}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
