"""Fixtures shared by every test layer. Servers (SeaweedFS, PostgreSQL) are started by the tests themselves."""

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.seaweed", "tests.fixtures.postgres", "tests.fixtures.catalog"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT.parent / "shared" / "samples"
EVENT_FIXTURES = Path(__file__).parent / "events"


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"the team's samples are expected at {SAMPLES} (../shared beside the checkout)")
    return SAMPLES
