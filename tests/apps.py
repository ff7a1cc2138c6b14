"""The apps as a user launches them (subprocesses), for the end-to-end tests: their output is
collected, and while one runs a progress line reaches the terminal every ``PROGRESS_S`` seconds
(past pytest's capture), so that a slow test on a busy runner is never silent."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAST = ["backbone.image_size=160"]   # same pipeline, smaller images: keeps the suite quick
#: the settings of the session's ``fast_store`` (tests/conftest.py): one torch thread, so that any
#: test extracting with the same settings must reproduce it bit for bit (README, "Reproducibility")
FAST_STORE = [*FAST, "store.chunk_size=16", "threads=1"]
PROGRESS_S = 30.0


PYTEST_CONFIG = None   # set by tests/conftest.py


def app_env(store: Path, machine_threads: bool = False) -> dict:
    """The environment of an app: ``store``, the repository importable; with
    ``machine_threads`` without the suite's OMP_NUM_THREADS (tests/conftest.py), so that the app
    sizes its threads from its cores and launcher as a user's would."""
    env = dict(os.environ, DEEPAGG_STORE=str(store), HYDRA_FULL_ERROR="0",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if machine_threads:
        env.pop("OMP_NUM_THREADS", None)
    return env


def progress(line: str) -> None:
    """A line on the terminal while a test runs (past pytest's capture of fds 1 and 2)."""
    capman = PYTEST_CONFIG.pluginmanager.getplugin("capturemanager") if PYTEST_CONFIG else None
    if capman is None:
        sys.__stderr__.write(line)
        sys.__stderr__.flush()
        return
    with capman.global_and_fixture_disabled():
        sys.stderr.write(line)
        sys.stderr.flush()


def deepagg(args, cwd: Path, store: Path, check=True, app="experiments.run", timeout=1800,
            machine_threads=False):
    """Run ``python -m app args`` in ``cwd`` with ``store``; returns the CompletedProcess
    (stdout, stderr as text). ``check``: a non-zero exit fails with both outputs;
    ``machine_threads``: see ``app_env``."""
    cmd = [sys.executable, "-m", app, *args]
    p = subprocess.Popen(cmd, cwd=cwd, env=app_env(store, machine_threads), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    readers = [threading.Thread(target=lambda s=s, k=k: out[k].extend(iter(s.readline, "")), daemon=True)
               for s, k in ((p.stdout, "stdout"), (p.stderr, "stderr"))]
    for r in readers:
        r.start()
    start = time.monotonic()
    try:
        while True:
            try:
                p.wait(timeout=PROGRESS_S)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - start
                if elapsed > timeout:
                    raise AssertionError(f"{app} {' '.join(args)} ran past {timeout} s") from None
                last = (out["stderr"] or out["stdout"] or [""])[-1].strip().rsplit("\r", 1)[-1][-100:]
                progress(f"\n    ... {app} {' '.join(args)[:80]}: {elapsed:.0f} s, last: {last}\n")
    finally:
        if p.poll() is None:             # timed out or interrupted: the app and its workers
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    for r in readers:
        r.join()
    done = subprocess.CompletedProcess(cmd, p.returncode, "".join(out["stdout"]), "".join(out["stderr"]))
    if check and done.returncode != 0:
        raise AssertionError(f"{app} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done
