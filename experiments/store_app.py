"""``deepagg-store``: look into a feature store and check it.

    deepagg-store list   [--root ROOT]            entries: dataset, key, images, chunks, size
    deepagg-store verify [--root ROOT] [--set-aside]
                                                  every chunk against its record (sizes, shapes,
                                                  CRC-32); --set-aside moves bad chunks away (under
                                                  their locks) so that the next run re-extracts them
    deepagg-store clean  [--root ROOT]            delete what checks set aside (set_aside/)

ROOT defaults to $DEEPAGG_STORE, else ~/.cache/deepagg/store (as deepagg-run). Exit code 0 when
every chunk is sound, 1 when some are not, 2 for a wrong root.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

from benchmarks.errors import StoreError
from experiments.cli import command_entry
from features.store import LOCAL, ChunkInvalid, ChunkSpec, check_chunk, layout
from features.store.layout import RECORD
from features.store.records import EARLIER_FORMAT


def default_root() -> Path:
    env = os.environ.get("DEEPAGG_STORE")
    return Path(env) if env else Path.home() / ".cache" / "deepagg" / "store"


def chunk_problem(chunk: Path, dtype: str, kind: str = LOCAL) -> str | None:
    """What is wrong with a chunk of ``kind`` against its own record (None: sound): the store's
    own check (``check_chunk``: sizes, shapes, dtype, row counts, CRC-32), with the names and
    stamps the record holds (which images a chunk should hold is known only to a run, which
    checks that)."""
    try:
        record = json.loads((chunk / RECORD).read_text())
        names, stamps = tuple(record["names"]), tuple(record["stamps"])
    except FileNotFoundError:
        return f"{EARLIER_FORMAT} (the next run sets it aside and extracts it again)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable record.json ({e})"
    spec = ChunkSpec(0, 0, len(names), names, stamps)
    try:
        check_chunk(chunk, spec, dtype, kind, checksums=True)
    except ChunkInvalid as e:
        return str(e)
    return None


def describe(extractor: dict) -> str:
    """A short line telling entries apart: the extractor and the settings that differ most."""
    if "descriptors_of" in extractor:
        return "final descriptors of " + describe(extractor["descriptors_of"])
    keys = ("kind", "name", "layer", "image_size", "max_keypoints", "precision", "decode")
    return " ".join(f"{k}={extractor[k]}" for k in keys if k in extractor)


def store(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepagg-store", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Look into a feature store and check it.",
        epilog=textwrap.fill(f"The store is --root, else $DEEPAGG_STORE, else ~/.cache/deepagg/store (now: "
               f"{default_root()}), the same default as deepagg-run's store.root. That default is "
               "one store for every process of this account: give each project its own with "
               "`export DEEPAGG_STORE=/path/to/project/store`. Exit codes: 0 every chunk sound, "
               "1 some are not, 2 no store at the root.", 79))
    parser.add_argument("command", choices=("list", "verify", "clean"), help=(
        "list: entries (dataset, key, images, chunks, size, extractor); verify: every chunk "
        "against its record (sizes, shapes, CRC-32); clean: delete what checks set aside"))
    parser.add_argument("--root", type=Path, default=None,
                        help="the store (default: $DEEPAGG_STORE, else ~/.cache/deepagg/store)")
    parser.add_argument("--set-aside", action="store_true",
                        help="with verify: move bad chunks to set_aside/ (under their locks), so "
                             "that the next run extracts them again")
    args = parser.parse_args(argv)
    root = (args.root or default_root()).expanduser()
    if not root.is_dir():
        raise StoreError(f"no store at {root} (set --root or $DEEPAGG_STORE)")
    bad = checked = 0
    if args.command == "clean":
        freed = 0
        for aside in layout.set_aside_dirs(root):
            freed += sum(f.stat().st_size for f in aside.rglob("*") if f.is_file())
            shutil.rmtree(aside)
            print(f"deleted {aside}")
        print(f"{freed / 2 ** 20:,.1f} MiB freed under {root}")
        return 0
    for dataset, entry, manifest in layout.entries(root):
        chunks = layout.chunk_dirs(entry)
        if args.command == "list":
            size = sum(f.stat().st_size for c in chunks for f in c.iterdir()) / 2 ** 20
            n = manifest.get("n_images", "?") if manifest else "? (unreadable manifest)"
            print(f"{dataset:20s} {entry.name}  {n} images  {len(chunks)} chunks  {size:,.1f} MiB  "
                  f"{describe((manifest or {}).get('extractor', {}))}")
            continue
        dtype = (manifest or {}).get("dtype", "float16")
        kind = (manifest or {}).get("kind", LOCAL)
        for chunk in chunks:
            checked += 1
            problem = chunk_problem(chunk, dtype, kind)
            if problem is None:
                continue
            bad += 1
            print(f"{chunk}: {problem}")
            if args.set_aside:
                from filelock import FileLock
                with FileLock(layout.lock_path(entry, layout.chunk_index(chunk))):
                    if chunk_problem(chunk, dtype, kind) is None:   # re-extracted meanwhile
                        continue
                    target = layout.set_aside(entry, chunk)
                print(f"  moved to {target}; the next run extracts it again")
    if args.command == "verify":
        print(f"{checked} chunk(s) checked, {bad} bad, under {root}")
    return 1 if bad else 0


main = command_entry("deepagg-store", store)

if __name__ == "__main__":
    sys.exit(main())
