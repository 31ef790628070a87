"""Fixtures shared by the whole test suite."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The language contract, ``<repo>/../shared/spec``; skips the test when it is absent."""
    path = (REPO_ROOT.parent / "shared" / "spec").resolve()
    if not path.is_dir():
        pytest.skip(f"the shared language spec is not at {path}")
    return path
