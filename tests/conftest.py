"""Shared test helpers.

`need_tool("qemu-system-arm")` skips a test when a system tool is missing, except under CI=true,
where a missing tool is a failure: CI must prove the whole path, not quietly skip it.
"""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def need_tool(name: str) -> str:
    """Return the tool's path; skip (locally) or fail (CI=true) when it is not on PATH."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not on PATH (make test installs it: see tools/sysdeps.sh)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def root() -> Path:
    return ROOT
