"""Random models (tools/random_model.py) through the host build, both kernel sets, against TFLM byte for byte.

    python tools/differential.py FIRST COUNT [--no-asan]  # seeds FIRST..FIRST+COUNT-1; exit 1 on a mismatch

A mismatch prints its seed and keeps the model file under build/random/, so it is a one-line reproducer:
    python tools/differential.py SEED 1
Used by tests/test_firmware_random.py.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emulator as fw  # noqa: E402
import gen_model  # noqa: E402
from random_model import random_model  # noqa: E402

INPUTS_PER_MODEL = 3
KEEP = fw.FIRMWARE / "build" / "random"  # models that mismatched, kept for reproduction


@dataclass
class Summary:
    models: int = 0
    inputs: int = 0
    ops: dict = field(default_factory=dict)
    shifts: list = field(default_factory=lambda: [99, -99])  # min, max
    zero_points: list = field(default_factory=lambda: [999, -999])
    mismatches: list = field(default_factory=list)  # one line per failing (seed, kernels)

    def add(self, info: dict) -> None:
        self.models += 1
        for name in info["ops"]:
            self.ops[name] = self.ops.get(name, 0) + 1
        if info["shifts"]:
            self.shifts = [min(self.shifts[0], *info["shifts"]), max(self.shifts[1], *info["shifts"])]
        zps = info["zero_points"]
        self.zero_points = [min(self.zero_points[0], *zps), max(self.zero_points[1], *zps)]

    def line(self) -> str:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items()))
        return (
            f"{self.models} random models, {self.inputs} inputs, both kernel sets vs TFLM; "
            f"requantisation shifts {self.shifts[0]}..{self.shifts[1]} (negative: right shifts), "
            f"zero points {self.zero_points[0]}..{self.zero_points[1]}; "
            f"operators: {ops}; mismatches: {len(self.mismatches)}"
        )


def tflm_raw(model: bytes, xq: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    outs = []
    for q in xq:
        interp.set_input(q, 0)
        interp.invoke()
        outs.append(interp.get_output(0).reshape(-1).copy())
    return np.stack(outs).astype(np.int8)


def check_seed(seed: int, exe: Path, summary: Summary, tmp: Path) -> None:
    model, info = random_model(seed)
    summary.add(info)
    path, f32, packed = tmp / "model.tflite", tmp / "inputs.f32", tmp / "packed.bin"
    path.write_bytes(model)
    packed.write_bytes(gen_model.packed_file(gen_model.packed_weights(model)))
    from tflite_micro import runtime

    det = runtime.Interpreter.from_bytes(model).get_input_details(0)
    qp = det["quantization_parameters"]
    scale, zp = float(qp["scales"][0]), int(qp["zero_points"][0])
    rng = np.random.default_rng(seed)
    q = rng.integers(-128, 128, (INPUTS_PER_MODEL, *det["shape"][1:]))
    x = ((q - zp) * np.float64(scale)).astype(np.float32)  # floats the firmware quantises back to q
    xq = fw.quantize(x, scale, zp).reshape(INPUTS_PER_MODEL, *det["shape"])
    x.tofile(f32)
    ref = tflm_raw(model, xq)
    summary.inputs += len(x)
    for kernels in ("reference", "optimized"):
        args = [str(exe), str(path), str(f32), kernels, "200000"]
        args += [str(packed)] if kernels == "optimized" else []
        proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
        out = fw.parse(proc.stdout)
        problem = ""
        if proc.returncode != 0 or out.error:
            problem = f"exit {proc.returncode} {out.error} {proc.stderr[-400:]}"
        elif out.raw.shape != ref.shape or (out.raw != ref).any():
            k = int(np.flatnonzero((out.raw != ref).any(axis=1))[0]) if out.raw.shape == ref.shape else 0
            problem = f"input {k}: ours {out.raw[k].tolist() if len(out.raw) else []} TFLM {ref[k].tolist()}"
        if problem:
            KEEP.mkdir(parents=True, exist_ok=True)
            keep = KEEP / f"random_{seed}.tflite"
            keep.write_bytes(model)
            summary.mismatches.append(
                f"seed {seed} {kernels} ({' '.join(info['ops'])}): {problem}\n"
                f"  reproduce: .venv/bin/python firmware/tools/differential.py {seed} 1   (model: {keep})"
            )


def run(first: int, count: int, asan: bool = True) -> Summary:
    exe = fw.build_host() / ("kws_host_asan" if asan else "kws_host")
    summary = Summary()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(first, first + count):
            check_seed(seed, exe, summary, Path(tmp))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--no-asan", action="store_true", help="the -O2 host build instead of ASan + UBSan")
    args = ap.parse_args()
    t = time.time()
    s = run(args.first, args.count, asan=not args.no_asan)
    print("\n".join(s.mismatches))
    print(f"{s.line()} ({time.time() - t:.1f} s)")
    sys.exit(1 if s.mismatches else 0)


if __name__ == "__main__":
    main()
