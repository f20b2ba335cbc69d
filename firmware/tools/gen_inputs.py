"""Write inputs [start, start + count) of an .npy (N x model input shape, int8 or float32) as C arrays for a
firmware image (run by the Makefile when INPUTS_NPY is set; tools/run_model.py sets it).

    python tools/gen_inputs.py --inputs X.npy --start 0 --count 8 --out DIR     # DIR/inputs.c

float32 inputs become `kws_inputs` (quantised on the device, as the book's app does); int8 inputs become
`kws_inputs_q`, copied into the input tensor as they are (4x less flash per input).
"""

import argparse
from pathlib import Path

import numpy as np

HEAD = "#include <stdint.h>\n\n"


def inputs_c(x: np.ndarray, source: str) -> str:
    rows = x.reshape(len(x), -1)
    if x.dtype == np.int8:
        body = ",\n  ".join(", ".join(str(int(v)) for v in row) for row in rows)
        array = f"const int8_t kws_inputs_q[] __attribute__((aligned(16))) = {{\n  {body}\n}};\n"
    else:
        body = ",\n  ".join(", ".join(f"{float(v)!r}f" for v in row.astype(np.float64)) for row in rows)
        array = f"const float kws_inputs[] __attribute__((aligned(16))) = {{\n  {body}\n}};\n"
    return (
        f"/* {source}: {len(x)} {x.dtype} inputs of shape {tuple(x.shape[1:])}; by tools/gen_inputs.py */\n"
        + HEAD
        + array
        + f"const int kws_num_inputs = {len(x)};\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    x = np.load(args.inputs)
    if x.dtype not in (np.int8, np.float32):
        raise SystemExit(f"{args.inputs}: inputs are {x.dtype}, expected int8 or float32")
    x = x[args.start : args.start + args.count]
    if len(x) == 0:
        raise SystemExit(f"{args.inputs}: no inputs in [{args.start}, {args.start + args.count})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inputs.c").write_text(
        inputs_c(x, f"{Path(args.inputs).name} [{args.start}, {args.start + len(x)})")
    )


if __name__ == "__main__":
    main()
