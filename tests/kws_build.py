"""Tests that need the keyword-spotting models call `kws_dir()`: it runs `make models` (no-op when fresh)."""

import functools
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def kws_dir() -> Path:
    subprocess.run(["make", "-s", "models"], cwd=ROOT, check=True, capture_output=True)
    return ROOT / "build" / "kws"
