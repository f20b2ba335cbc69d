"""Fuzz the firmware's model reader and both kernel sets on the host under AddressSanitizer + UBSan:
truncated and corrupted copies of the KWS models, random valid models (firmware/tools/random_model.py) and
the MLPerf-shaped models when built, with an arena large enough that accepted mutations reach Invoke; the
optimised kernels get the intact model's build-time weights. Zero crashes: a sanitizer report fails the
test and keeps the model under tests/firmware_crashes/, where test_kept_crashes replays every case found.
More iterations: FIRMWARE_FUZZ_ITERATIONS=10000 (`make fuzz`)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_tool
from tests.test_firmware import MODELS, features  # noqa: F401  (fixture: skips or fails without models)

sys.path.insert(0, str(ROOT / "firmware" / "tools"))
import emulator as fw  # noqa: E402
import gen_model  # noqa: E402
from random_model import random_model  # noqa: E402

ITERATIONS = int(os.environ.get("FIRMWARE_FUZZ_ITERATIONS", "4000"))  # about 8 s per seed on the CI machine
RANDOM_MODELS = 12  # small and fast: most iterations go to them
SEEDS = (1, 2)  # each seed its own mutation stream (seeds 2k and 2k+1 once were the same)
ARENA = 1024 * 1024
CRASHES = ROOT / "tests" / "firmware_crashes"
MLPERF = ROOT / "build" / "mlperf"
NAMED = set(fw.STATUS) - {13, 14}  # what the interpreter may answer: OK or a named refusal


def corpus(tmp: Path) -> list[str]:
    """MODEL:PACKED arguments: the KWS models and random models (with ADD, MEAN, PAD); under `make fuzz`
    (more iterations) also the MLPerf-shaped models that are built and small (Invoke is slow under ASan)."""
    models = [MODELS["cnn"], MODELS["dscnn"]]
    for seed in range(RANDOM_MODELS):
        path = tmp / f"random_{seed}.tflite"
        path.write_bytes(random_model(seed)[0])
        models.append(path)
    if ITERATIONS > 4000:
        models += sorted(p for p in MLPERF.glob("*.tflite") if "vww" not in p.name)  # VWW: 0.3 s per Invoke
    args = []
    for k, model in enumerate(models):
        packed = tmp / f"packed_{k}.bin"
        packed.write_bytes(gen_model.packed_file(gen_model.packed_weights(Path(model).read_bytes())))
        args.append(f"{model}:{packed}")
    return args


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_both_kernel_sets(features, seed, tmp_path):  # noqa: F811
    need_tool("cc")
    exe = fw.build_host() / "kws_fuzz"
    crash = tmp_path / "crash.tflite"
    args = [str(exe), str(ITERATIONS), str(seed), str(ARENA), str(crash), *corpus(tmp_path)]
    start = time.time()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if crash.exists():
        CRASHES.mkdir(exist_ok=True)
        kept = CRASHES / f"fuzz_seed{seed}_{int(time.time())}.tflite"
        kept.write_bytes(crash.read_bytes())
        pytest.fail(f"crash or sanitizer report, model kept as {kept}:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, f"crash or sanitizer report:\n{proc.stderr[-3000:]}"
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr, proc.stderr[-3000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()}
    invoked = counts.pop("invoked")
    print(f"seed {seed}: {ITERATIONS} iterations over {len(args) - 5} models in {time.time() - start:.1f} s, "
          f"{invoked} reached Invoke; {counts}")  # fmt: skip
    assert sum(counts.values()) == ITERATIONS
    # the mutations really exercise the checks: several distinct named refusals, and many models still run
    assert len(set(counts) - {"OK"}) >= 4 and counts.get("OUT_OF_BOUNDS", 0) > 0, counts
    assert invoked > ITERATIONS // 8, f"only {invoked} of {ITERATIONS} mutations reached Invoke"


def test_fuzz_seeds_differ(tmp_path):
    need_tool("cc")
    exe = fw.build_host() / "kws_fuzz"
    model = tmp_path / "m.tflite"
    model.write_bytes(random_model(0)[0])
    runs = [
        subprocess.run([str(exe), "300", str(s), str(ARENA), str(tmp_path / "c.tflite"), str(model)],
                       capture_output=True, text=True, timeout=120, check=True).stdout
        for s in (2, 3)
    ]  # fmt: skip
    assert runs[0] != runs[1], "seeds 2 and 3 gave the same mutations"


@pytest.mark.parametrize("case", sorted(p.name for p in CRASHES.glob("*.tflite")))
def test_kept_crashes(case, tmp_path):
    """Every crash any fuzz run found: now a named refusal (or a run) in both kernel sets, no sanitizer
    report, and gen_model.py answers in one line, no traceback."""
    need_tool("cc")
    model = CRASHES / case
    packed = model.with_suffix(".packed.bin")
    if not packed.exists():
        packed = tmp_path / "empty.bin"
        packed.write_bytes(b"")
    exe = fw.build_host() / "kws_host_asan"
    (tmp_path / "zeros.f32").write_bytes(bytes(4 * 4096))
    for kernels in ("reference", "optimized"):
        args = [str(exe), str(model), str(tmp_path / "zeros.f32"), kernels, str(ARENA), str(packed)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert proc.returncode in NAMED, f"{case} {kernels}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        sanitizer = "runtime error" in proc.stderr or "AddressSanitizer" in proc.stderr
        assert not sanitizer, proc.stderr[-2000:]
        if proc.returncode:
            assert f"error {fw.STATUS[proc.returncode]}" in proc.stdout, proc.stdout
    gen = [sys.executable, str(fw.FIRMWARE / "tools" / "gen_model.py"), "--model", str(model)]
    gen += ["--out", str(tmp_path)]
    proc = subprocess.run(gen, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 1, proc.stderr
    assert proc.returncode == 0 or proc.stderr.startswith(f"gen_model: {model}: "), proc.stderr


@pytest.mark.parametrize("cut", [9, 100, 1000, 5000, 20000])
def test_gen_model_names_a_truncated_model(features, cut, tmp_path):  # noqa: F811
    model = tmp_path / "cut.tflite"
    model.write_bytes(MODELS["dscnn"].read_bytes()[:cut])
    gen = [sys.executable, str(fw.FIRMWARE / "tools" / "gen_model.py"), "--model", str(model)]
    proc = subprocess.run([*gen, "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith(f"gen_model: {model}: ")
