"""The exit codes of every deepagg command, in one place: 0 done; 2 bad input (a setting, a file, a
dataset; one line naming it), Hydra's own config errors included; 1 a bug (with its traceback);
130 interrupted. In a multirun a failed job is recorded and the sweep goes on, exiting 2 (or 1
after a crash) at its end. ``hydra_entry`` wraps the Hydra apps (deepagg-run, -extract,
-similarity), ``command_entry`` the argparse ones (deepagg-store, -download, -report).

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
from typing import Callable, Sequence

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


#: the status of a configuration that stopped on a project error (a setting, a file, the data)
#: and of one that crashed (a bug); records without ``status`` completed ("ok")
FAILED, CRASHED = "failed", "crashed"


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (or launches one)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def report_errors(task, on_failure=None):
    """Run ``task``. A single run: a project error (bad setting, file or dataset) prints one line
    and exits 2; anything else propagates with its traceback (Hydra prints it and exits 1).

    A job of a multirun never ends the sweep. With ``on_failure`` (deepagg-run), its error is
    logged in its own job folder (``run.log``; a crash with its traceback), ``on_failure(error,
    status)`` records it (``FAILED`` or ``CRASHED``), and the sweep goes on; the launching process
    exits non-zero at the end (``SweepFailures``). Without it, the exception is left to Hydra,
    which keeps it as that job's failure, runs the other jobs and then stops with exit code 1."""
    from hydra.errors import InstantiationException
    _mark_started()
    try:
        return task()
    except Exception as e:   # noqa: BLE001 -- sorted below: project errors, then bugs
        error = e.__cause__ if isinstance(e, InstantiationException) and isinstance(
            e.__cause__, DeepaggError) else e
        project = isinstance(error, DeepaggError)
        if not in_multirun():
            if project:
                return _fail(error)
            raise
        if on_failure is None:   # Hydra keeps it as the job's failure; the batch's other jobs run
            raise
        if project:
            log.error("this configuration failed: %s", error)
        else:
            log.exception("this configuration crashed (a bug; the sweep goes on)")
        try:
            on_failure(error, FAILED if project else CRASHED)
        except Exception:   # noqa: BLE001 -- e.g. a full disk: the job's log still has the error
            log.exception("the failure of this configuration could not be recorded")
        return None


class SweepFailures:
    """The configurations of a sweep that failed, found by the gathering callback in the
    launching process; ``hydra_entry`` exits 2 (all failed on project errors) or 1 (some crashed)
    after the sweep when there are any."""
    statuses: list[str] = []

    @classmethod
    def reset(cls) -> None:
        cls.statuses = []

    @classmethod
    def report(cls, failures: list[tuple[str, str, str]]) -> None:
        """``failures``: (configuration, status, message) each; printed once, on stderr."""
        cls.statuses = [status for _, status, _ in failures]
        if failures:
            lines = "\n  ".join(f"{conf}: {status}: {message}" for conf, status, message in failures)
            print(f"{Path(sys.argv[0]).name}: error: {len(failures)} configuration(s) of the sweep "
                  f"did not complete (the others were gathered; run the sweep again to retry "
                  f"only these):\n  {lines}", file=sys.stderr)

    @classmethod
    def exit_code(cls) -> int:
        if not cls.statuses:
            return 0
        return 1 if CRASHED in cls.statuses else 2


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
        SweepFailures.reset()
        try:
            app()
        except SystemExit as e:
            if e.code == 1 and not _STARTED:
                sys.exit(2)
            raise
        if SweepFailures.exit_code():
            sys.exit(SweepFailures.exit_code())
    return main


def command_entry(prog: str, command: Callable[[Sequence[str] | None], int | None],
                  interrupted: str = "interrupted") -> Callable[[Sequence[str] | None], int]:
    """A console-script entry point around an argparse ``command(argv)`` that returns its exit
    code (None: 0): a project error prints ``prog: error: message`` on stderr and returns 2,
    Ctrl-C prints ``prog: {interrupted}`` and returns 130; anything else is a bug and keeps its
    traceback (exit code 1)."""
    def main(argv: Sequence[str] | None = None) -> int:
        try:
            return command(argv) or 0
        except DeepaggError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(f"{prog}: {interrupted}", file=sys.stderr)
            return 130
    return main
