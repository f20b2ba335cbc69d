"""Export a PyTorch model to ONNX with either exporter, then prove the file computes what PyTorch computes.

Taught in: lessons/10_export_basics.ipynb and lessons/11_when_export_fails.ipynb.
Needs: torch, onnx, onnxruntime, numpy; onnxscript for the dynamo exporter (torch installs none of them).

    report = export_onnx(net, (X,), "net.onnx")                    # dynamo exporter (torch 2.14 default)
    report = export_onnx(net, (X,), "net.onnx", exporter="legacy")  # TorchScript exporter, dynamo=False
    print(report)                                                  # opset, names, max abs diff per output
    legacy_unsupported_ops(net, (X,))                              # ['aten::asinh', ...] before you export
"""

import contextlib
import io
import math
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

EXPORTERS = ("dynamo", "legacy")
LEGACY_DEFAULT_OPSET = 17  # the TorchScript exporter knows opsets 7-20; 17 is what most runtimes load
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


class ExportMismatchError(AssertionError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


@dataclass
class ExportReport:
    path: Path
    exporter: str
    opset: int
    ir_version: int
    input_names: list[str]
    output_names: list[str]
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        diffs = format_diffs(self.max_abs_diff) if self.max_abs_diff else "not verified"
        return (
            f"{self.path.name} ({self.exporter} exporter): opset {self.opset}, IR version {self.ir_version}\n"
            f"  inputs {self.input_names} -> outputs {self.output_names}\n"
            f"  max abs diff vs PyTorch: {diffs}"
        )


def format_diffs(diffs: dict[str, float], floor: float = 1e-5) -> str:
    """'output0 < 1e-05, output1 < 1e-03': each difference rounded up to a power of ten.

    Float32 rounding differs between CPUs in the last digits; a bound prints the same everywhere.
    """
    parts = []
    for name, diff in diffs.items():
        exponent = round(math.log10(floor))
        if diff >= floor:
            exponent = math.floor(math.log10(diff)) + 1
        parts.append(f"{name} < 1e{exponent:+03d}")
    return ", ".join(parts)


@contextlib.contextmanager
def quiet_native_output():
    """Send what C++ code writes to stdout/stderr (file descriptors 1 and 2) to a buffer.

    The legacy exporter's C++ logger prints the whole TorchScript graph when an export fails, and
    Jupyter under pytest never shows C-level output. Yields a list that holds the text afterwards.
    """
    captured = []
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            for fd in saved:
                os.dup2(sink.fileno(), fd)
            yield captured
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


def _as_tuple(example_inputs) -> tuple:
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    bad = [f"#{i}: {type(x).__name__}" for i, x in enumerate(inputs) if not isinstance(x, torch.Tensor)]
    if not inputs or bad:
        raise TypeError(f"example inputs must be a tensor or a tuple of tensors; got {bad or 'nothing'}")
    return inputs


def _flatten_outputs(outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, (tuple, list)):
        return [t for out in outputs for t in _flatten_outputs(out)]
    raise TypeError(
        f"the model returned a {type(outputs).__name__}; ONNX outputs must be tensors "
        "(or tuples/lists of tensors): return tensors from forward()"
    )


def compare_with_onnxruntime(model: torch.nn.Module, onnx_path, inputs) -> dict[str, float]:
    """Run the model in PyTorch and the ONNX file in ONNX Runtime on the same inputs.

    Returns {output name: max abs difference}. Raises if the input count or an output shape differs.
    """
    inputs = _as_tuple(inputs)
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"no ONNX file at {onnx_path}")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(
            f"{onnx_path.name} expects {len(names)} input(s) {names}, got {len(inputs)} tensor(s)"
        )
    with torch.no_grad():
        expected = _flatten_outputs(model(*inputs))
    got = session.run(None, {n: x.detach().cpu().numpy() for n, x in zip(names, inputs, strict=True)})
    out_names = [o.name for o in session.get_outputs()]
    if len(got) != len(expected):
        raise ValueError(
            f"{onnx_path.name} has {len(got)} output(s) {out_names}; PyTorch gave {len(expected)}"
        )
    diffs = {}
    for name, ort_out, torch_out in zip(out_names, got, expected, strict=True):
        torch_out = torch_out.detach().cpu().numpy()
        if ort_out.shape != torch_out.shape:
            raise ValueError(
                f"output {name!r}: ONNX Runtime shape {ort_out.shape}, PyTorch {torch_out.shape}"
            )
        diffs[name] = float(np.abs(ort_out.astype(np.float64) - torch_out).max()) if torch_out.size else 0.0
    return diffs


def _other_batch(inputs: tuple, batch: int = 3) -> tuple:
    """Inputs with another batch size, to prove a dynamic batch dimension really is dynamic."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for x in inputs:
        y = x[:1].repeat(batch, *([1] * (x.dim() - 1)))
        if y.is_floating_point():
            y = y + 0.1 * torch.randn(y.shape, generator=generator, dtype=y.dtype)
        out.append(y)
    return tuple(out)


def export_onnx(
    model: torch.nn.Module,
    example_inputs,
    path,
    *,
    exporter: str = "dynamo",
    dynamic_batch: bool = False,
    opset: int | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    verify: bool = True,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> ExportReport:
    """Export to one self-contained .onnx file, check it with onnx.checker and compare with ONNX Runtime.

    exporter="dynamo" uses torch.export (opset >= 18, dynamic_shapes); "legacy" the TorchScript exporter
    (dynamo=False, dynamic_axes). dynamic_batch makes dimension 0 of every input and output dynamic and
    is then also verified with a batch of 3. Raises ExportMismatchError naming each output that differs.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if model.training:
        raise ValueError(
            "model is in training mode (dropout, batch-norm statistics): call model.eval() first"
        )
    inputs = _as_tuple(example_inputs)
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"folder {path.parent} does not exist: create it before exporting {path.name}"
        )
    input_names = input_names or [f"input{i}" for i in range(len(inputs))]
    if len(input_names) != len(inputs):
        raise ValueError(f"{len(input_names)} input names {input_names} for {len(inputs)} example inputs")
    with torch.no_grad():
        n_outputs = len(_flatten_outputs(model(*inputs)))
    output_names = output_names or [f"output{i}" for i in range(n_outputs)]

    if exporter == "legacy":
        axes = {name: {0: "batch"} for name in [*input_names, *output_names]} if dynamic_batch else None
        with warnings.catch_warnings(), quiet_native_output():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # dynamo=False was asked for
            torch.onnx.export(
                model, inputs, str(path), dynamo=False, opset_version=opset or LEGACY_DEFAULT_OPSET,
                input_names=input_names, output_names=output_names, dynamic_axes=axes,
            )  # fmt: skip
    else:
        shapes = tuple({0: torch.export.Dim("batch")} for _ in inputs) if dynamic_batch else None
        torch.onnx.export(
            model, inputs, str(path), dynamo=True, opset_version=opset, input_names=input_names,
            output_names=output_names, dynamic_shapes=shapes, external_data=False, verbose=False,
        )  # fmt: skip

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    report = ExportReport(
        path=path,
        exporter=exporter,
        opset=next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        ir_version=proto.ir_version,
        input_names=[i.name for i in proto.graph.input],
        output_names=[o.name for o in proto.graph.output],
    )
    if verify:
        report.max_abs_diff = compare_with_onnxruntime(model, path, inputs)
        checks = [("", inputs)] + ([(" (batch 3)", _other_batch(inputs))] if dynamic_batch else [])
        for label, xs in checks:
            diffs = compare_with_onnxruntime(model, path, xs) if label else report.max_abs_diff
            with torch.no_grad():
                expected = _flatten_outputs(model(*xs))
            bad = [
                f"{name}{label}: max abs diff {diff:.3g}"
                for (name, diff), ref in zip(diffs.items(), expected, strict=True)
                if diff > atol + rtol * float(ref.abs().max())
            ]
            if bad:
                raise ExportMismatchError(
                    f"{path.name} differs from PyTorch beyond atol={atol}, rtol={rtol}: " + "; ".join(bad)
                )
    return report


def legacy_unsupported_ops(model: torch.nn.Module, example_inputs, *, opset: int = LEGACY_DEFAULT_OPSET):
    """Ops the legacy (TorchScript) exporter cannot turn into standard ONNX ops, as 'namespace::name'.

    Exports with ONNX_FALLTHROUGH, which leaves each op without a symbolic as a node of its own
    namespace instead of failing on the first one. A symbolic you registered counts as supported;
    its node is listed only if it emits a non-standard domain (ONNX Runtime needs a kernel for those).
    """
    inputs = _as_tuple(example_inputs)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            model, inputs, buffer, dynamo=False, opset_version=opset,
            operator_export_type=torch.onnx.OperatorExportTypes.ONNX_FALLTHROUGH,
        )  # fmt: skip
    graph = onnx.load_from_string(buffer.getvalue()).graph
    found = {
        f"{'aten' if node.domain == 'org.pytorch.aten' else node.domain}::{node.op_type}"
        for node in graph.node
        if node.domain not in STANDARD_DOMAINS
    }
    return sorted(found)


def _self_check():
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    with tempfile.TemporaryDirectory() as tmp:
        report = export_onnx(net, (torch.rand(2, 4),), Path(tmp) / "net.onnx", exporter="legacy")
    assert max(report.max_abs_diff.values()) < 1e-5, report
