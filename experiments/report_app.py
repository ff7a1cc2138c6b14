"""``deepagg-report RESULTS_DIR``: one Markdown report of every result below a directory
(analysis/report.py writes it; this app rebuilds each job's dataset from its config for the
retrieval examples). Exit codes: experiments/cli.py."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from analysis.report import build_report
from benchmarks.errors import RecordsError
from experiments.adapters import job_dataset
from experiments.cli import command_entry


def report(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deepagg-report", description="One Markdown report "
                                     "(tables, figures, retrieval examples) of every result below "
                                     "a directory.")
    parser.add_argument("results_dir", type=Path, help="folder searched for results.jsonl files")
    parser.add_argument("--pdf", action="store_true", help="also write every figure as PDF")
    parser.add_argument("--metric", default="mAP", help="metric of the figures (default: mAP)")
    parser.add_argument("--examples", type=int, default=4, metavar="N",
                        help="queries per retrieval-examples figure (0: none)")
    parser.add_argument("--top-k", type=int, default=5, help="results shown per query")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.results_dir.is_dir():
        raise RecordsError(f"{args.results_dir} is not a directory")
    print(build_report(args.results_dir, args.pdf, args.metric, args.examples, args.top_k,
                       job_dataset=job_dataset))
    return 0


main = command_entry("deepagg-report", report)

if __name__ == "__main__":
    sys.exit(main())
