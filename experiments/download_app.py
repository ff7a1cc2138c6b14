"""``deepagg-download``: fetch a public benchmark into the layout deepagg reads (docs/datasets.md).
Interrupted downloads resume when run again. Exit codes: experiments/cli.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import registry
from benchmarks.downloads import download_dataset
from experiments.cli import command_entry


def download(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepagg-download", description="Download a benchmark into the layout deepagg reads "
        "(docs/datasets.md). Interrupted downloads resume when run again.")
    parser.add_argument("dataset", choices=registry.downloadable())
    parser.add_argument("--root", required=True, type=Path,
                        help="the dataset's folder, as in its config (e.g. data/oxford5k)")
    parser.add_argument("--keep-archives", action="store_true", help="keep archives after extraction")
    args = parser.parse_args(argv)
    download_dataset(args.dataset, args.root, args.keep_archives,
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


main = command_entry("deepagg-download", download,
                     interrupted="interrupted; run the same command again to resume")

if __name__ == "__main__":
    sys.exit(main())
