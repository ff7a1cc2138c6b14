"""Shared fixtures: the ../shared/data folder (skipped when absent) and an isolated store."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"benchmark material not found at {SHARED_DATA} (only present in the dev/CI checkout)")
    return SHARED_DATA
