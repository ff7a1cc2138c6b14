"""Hydra callbacks: gather every job's records of a multirun into one table and plot."""
from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.cli import SweepFailures
from analysis.records import completed

log = logging.getLogger("deepagg")


class GatherResults(Callback):
    """At the end of a multirun, write ``results.csv``, ``table.md`` and ``comparison.png`` into
    the sweep directory from every ``results.jsonl`` below it, print the table, and list the
    configurations that failed or crashed (the app then exits non-zero)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        import datetime as dt
        # failures recorded before this sweep started (of settings it may not even run) are not
        # its failures; records carry second-resolution timestamps
        self.started = dt.datetime.now().isoformat(timespec="seconds")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from analysis.tables import format_table, records_frame
        from experiments.run import write_outputs
        from analysis.records import gather
        sweep_dir = Path(config.hydra.sweep.dir)
        records = gather(sweep_dir)
        if not records:
            log.warning("no results found under %s", sweep_dir)
            return
        write_outputs(sweep_dir)
        print(format_table(records_frame(records)))
        log.info("gathered %d records into %s", len(records), sweep_dir)
        started = getattr(self, "started", "")
        SweepFailures.report([(Path(r.get("job_dir", "?")).name, r["status"], r.get("error", ""))
                              for r in records
                              if not completed(r) and r.get("timestamp", "") >= started])
