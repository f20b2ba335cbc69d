"""Fuzz the firmware's model reader on the host under AddressSanitizer + UBSan: truncated and corrupted
copies of the KWS models, a bounded number of iterations, zero crashes (a sanitizer report aborts)."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT, need_tool
from tests.test_firmware import MODELS, features  # noqa: F401  (fixture: skips or fails without models)

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402

ITERATIONS = {"dscnn": 2000, "cnn": 300}  # about 10 s together on the CI machine


@pytest.mark.parametrize("name", ITERATIONS)
def test_fuzz_truncated_and_corrupted_models(features, name, tmp_path):  # noqa: F811
    need_tool("cc")
    exe = fw.build_host() / "kws_fuzz"
    # half the iterations also hand the optimised kernels the build-time weights of the intact model
    gen = [sys.executable, str(fw.FIRMWARE / "tools" / "gen_model.py"), "--model", str(MODELS[name])]
    subprocess.run([*gen, "--out", str(tmp_path)], check=True)
    args = [str(exe), str(MODELS[name]), str(ITERATIONS[name]), "8", str(tmp_path / "packed.bin")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"crash or sanitizer report:\n{proc.stderr[-3000:]}"
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr, proc.stderr[-3000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()}
    assert sum(counts.values()) == ITERATIONS[name]
    # the mutations really exercise the checks: several distinct named refusals, and some models still run
    assert len(set(counts) - {"OK"}) >= 3 and counts.get("OUT_OF_BOUNDS", 0) > 0, counts
