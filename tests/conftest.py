"""Shared fixtures: the ../shared/data folder (skipped when absent), one default run and one
small store per session.

The suite runs torch (here and in every app it launches) on one thread unless OMP_NUM_THREADS
says otherwise: on a runner whose cores are busy with other jobs, two OpenMP threads on two cores
wait for each other's time slices at every operator (measured: extraction 25 times slower), one
thread does not. Tests of thread sizing launch their apps with the machine's own cores."""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")   # before torch is imported anywhere

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import apps  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark material not found at {SHARED_DATA} (only present in the dev/CI checkout)")
    return SHARED_DATA


# ----------------------------------------------------------------------------- one extraction per session
# The end-to-end tests share these instead of each extracting the demo from scratch. They are
# read, copied or compared against; a test that writes into a store copies it first.
from apps import FAST_STORE, deepagg  # noqa: E402


def pytest_configure(config):
    apps.PYTEST_CONFIG = config   # progress lines are written past pytest's output capture


class DefaultRun:
    """The default ``deepagg-run`` (no arguments) on a fresh store: its working folder, store,
    job folder and completed process."""

    def __init__(self, root: Path, process):
        self.root, self.store, self.process = root, root / "store", process
        (self.job,) = (root / "outputs" / "default").iterdir()


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> DefaultRun:
    root = tmp_path_factory.mktemp("default_run")
    return DefaultRun(root, deepagg([], root, root / "store"))


@pytest.fixture(scope="session")
def fast_store(tmp_path_factory) -> Path:
    """demo and demo_holdout at 160 px (``FAST_STORE``), extracted once by deepagg-extract."""
    root = tmp_path_factory.mktemp("fast_store")
    deepagg([*FAST_STORE, "fit_on=[demo_holdout]"], root, root / "store", app="experiments.extract")
    return root / "store"
