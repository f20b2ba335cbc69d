"""Run a .tflite model with TensorFlow Lite Micro on the host: outputs, intermediate tensors, arena bytes.

Taught in: lessons/32_tflm_on_the_host.ipynb. Needs: tflite-micro, numpy.
The `tflite-micro` package is the real TFLM interpreter with its reference kernels, so what it computes
is what firmware built from TFLM computes. It reports its arena use only by printing to C-level stderr
(`print_allocations`), so `arena_bytes` captures file descriptor 2 and parses the total.
"""

import contextlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from tflite_micro import runtime

DEFAULT_ARENA = 512 * 1024  # generous: enough for measuring; the firmware uses the measured figure
ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def _model_bytes(model) -> bytes:
    if isinstance(model, bytes | bytearray):
        data = bytes(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"no .tflite file at {path}")
        data = path.read_bytes()
    if data[4:8] != b"TFL3":
        raise ValueError(f"not a TFLite flatbuffer: expected b'TFL3' at bytes 4..8, got {data[4:8]!r}")
    return data


@contextlib.contextmanager
def captured_stderr():
    """Capture what C/C++ code writes to file descriptor 2; the text is in the yielded list afterwards."""
    text = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))


def interpreter(model, arena_size=DEFAULT_ARENA, preserve_all_tensors=False):
    """A TFLM interpreter for a path or bytes; errors from AllocateTensors come back as RuntimeError."""
    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors else (
        runtime.InterpreterConfig.kAllocationRecording)  # fmt: skip
    data = _model_bytes(model)
    with captured_stderr() as log:  # TFLM explains a failure on C-level stderr
        try:
            return runtime.Interpreter.from_bytes(data, arena_size=arena_size, intrepreter_config=config)
        except RuntimeError as error:
            failure = str(error)
    said = " ".join(line.strip() for line in log[0].splitlines() if line.strip())
    raise RuntimeError(
        f"TFLM could not set up the model with a {arena_size}-byte arena: {failure}. TFLM: {said}"
    )


def run_tflm(model, inputs, arena_size=DEFAULT_ARENA) -> np.ndarray:
    """Invoke once per sample of `inputs` (N, *input_shape[1:]) int8; returns the stacked outputs."""
    interp = interpreter(model, arena_size)
    details = interp.get_input_details(0)
    inputs = np.asarray(inputs)
    sample_shape = tuple(int(d) for d in details["shape"][1:])
    if inputs.dtype != details["dtype"] or tuple(inputs.shape[1:]) != sample_shape:
        raise ValueError(f"inputs must be {details['dtype'].__name__} (N, {sample_shape}), "
                         f"got {inputs.dtype} {inputs.shape}")  # fmt: skip
    outputs = []
    for x in inputs:
        interp.set_input(x[None], 0)
        interp.invoke()
        outputs.append(interp.get_output(0)[0].copy())
    return np.stack(outputs)


def arena_bytes(model, arena_size=DEFAULT_ARENA) -> int:
    """Bytes of tensor arena TFLM needs for this model (from print_allocations after one invoke)."""
    interp = interpreter(model, arena_size)
    details = interp.get_input_details(0)
    interp.set_input(np.zeros(details["shape"], details["dtype"]), 0)
    interp.invoke()
    with captured_stderr() as log:
        interp.print_allocations()
    match = ARENA_TOTAL.search(log[0])
    if not match:
        raise RuntimeError(f"print_allocations printed no arena total: {log[0][:200]!r}")
    return int(match.group(1))


def tensor_values(model, x, tensor_index: int) -> np.ndarray:
    """One intermediate tensor after running sample `x` (1, ...) through TFLM (kPreserveAllTensors)."""
    interp = interpreter(model, preserve_all_tensors=True)
    interp.set_input(np.asarray(x), 0)
    interp.invoke()
    return np.asarray(interp.GetTensor(tensor_index, 0)["tensor_data"])


def _self_check():
    assert (
        ARENA_TOTAL.search("[RecordingMicroAllocator] Arena allocation total 30448 bytes").group(1) == "30448"
    )
