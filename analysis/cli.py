"""What every Hydra app of deepagg shares: one line and exit code 2 for bad input, Hydra's own
config errors included; a traceback and exit code 1 for bugs.

Hydra reports a config error (unknown key, missing config, bad override) before the app starts,
and an exception of a job after the run or sweep has started, both with exit code 1. The
``Started`` callback (registered under ``hydra.callbacks`` in each app's config) marks the start
of a run or sweep in the process that launches it, so ``hydra_entry`` can tell the two apart, also
with launchers whose jobs run in other processes (joblib, submitit).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback

from benchmarks.errors import DeepaggError

log = logging.getLogger("deepagg")
_STARTED = False


class Started(Callback):
    """Hydra callback: the run or sweep has started (its config composed)."""

    def on_run_start(self, config, **kwargs) -> None:
        _mark_started()

    def on_multirun_start(self, config, **kwargs) -> None:
        _mark_started()


def _mark_started() -> None:
    global _STARTED
    _STARTED = True


def launcher_cpus() -> int | None:
    """The cores the sweep's Hydra launcher granted this job (``hydra.launcher.cpus_per_task`` of
    the submitit launchers; submitit's local executor sets neither an affinity mask nor
    SLURM_CPUS_PER_TASK), None for single runs and launchers without the setting."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    value = HydraConfig.get().launcher.get("cpus_per_task")
    return int(value) if isinstance(value, int) and value > 0 else None


def report_errors(task):
    """Run ``task``; a project error (bad setting, file or dataset) prints one line and exits 2;
    anything else propagates with its traceback (Hydra prints it and exits 1)."""
    from hydra.errors import InstantiationException
    _mark_started()
    try:
        return task()
    except DeepaggError as e:
        return _fail(e)
    except InstantiationException as e:
        if isinstance(e.__cause__, DeepaggError):
            return _fail(e.__cause__)
        raise


def _fail(e: Exception):
    _log_to_files(f"{e}")
    print(f"{Path(sys.argv[0]).name}: error: {e}", file=sys.stderr)
    sys.exit(2)


def _log_to_files(message: str) -> None:
    """The error into the run's log files (``run.log``) but not the console, where it is printed
    once, on stderr."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers + log.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def hydra_entry(app):
    """A console-script entry point around a Hydra ``app``: Hydra's config errors (exit 1 before
    anything started) exit 2 like the project's; a crash after the start keeps exit code 1."""
    def main() -> None:
        try:
            app()
        except SystemExit as e:
            if e.code == 1 and not _STARTED:
                sys.exit(2)
            raise
    return main
