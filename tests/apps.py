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


def app_env(store: Path) -> dict:
    return dict(os.environ, DEEPAGG_STORE=str(store), HYDRA_FULL_ERROR="0",
                PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def deepagg(args, cwd: Path, store: Path, check=True, app="experiments.run", timeout=1800):
    """Run ``python -m app args`` in ``cwd`` with ``store``; returns the CompletedProcess
    (stdout, stderr as text). ``check``: a non-zero exit fails with both outputs."""
    cmd = [sys.executable, "-m", app, *args]
    p = subprocess.Popen(cmd, cwd=cwd, env=app_env(store), stdout=subprocess.PIPE,
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
                sys.__stderr__.write(f"\n    ... {app} {' '.join(args)[:80]}: {elapsed:.0f} s, "
                                     f"last: {last}\n")
                sys.__stderr__.flush()
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
