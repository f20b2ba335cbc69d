"""tools/cuda_check.py: exits cleanly without CUDA, and its device-independent checks pass on the CPU."""

import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT

SCRIPT = ROOT / "tools" / "cuda_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: run the script itself")
def test_no_cuda_exits_cleanly():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "no CUDA device" in result.stdout


def test_cpu_smoke_passes():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu-smoke"], capture_output=True, text=True, cwd="/"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout and "5 passed, 0 failed" in result.stdout
