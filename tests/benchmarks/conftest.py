"""Fixtures for the benchmark loaders: official on-disk layouts written from the real ground truth."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_layouts import SAMPLES, load_mat, write_buildings


@pytest.fixture(scope="session")
def oxford_root(tmp_path_factory):
    from benchmarks.oxford import LANDMARKS

    mat = load_mat("oxford5k")
    root = tmp_path_factory.mktemp("oxford5k")
    write_buildings(root, mat, LANDMARKS["oxford5k"], "oxc1_", nested=False)
    return root, mat


@pytest.fixture(scope="session")
def paris_root(tmp_path_factory):
    from benchmarks.oxford import LANDMARKS

    mat = load_mat("paris6k")
    root = tmp_path_factory.mktemp("paris6k")
    write_buildings(root, mat, LANDMARKS["paris6k"], "", nested=True)
    return root, mat


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"sample images not found at {SAMPLES} (only in the dev/CI checkout with ../shared/data)")
    return SAMPLES
