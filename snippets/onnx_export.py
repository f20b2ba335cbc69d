"""Export a PyTorch model to ONNX with either exporter, then prove the file computes what PyTorch computes.

Taught in: lessons/10_export_basics.ipynb and lessons/11_when_export_fails.ipynb.
Needs: torch, onnx, onnxruntime, numpy; onnxscript for the dynamo exporter (torch installs none of them).

    report = export_onnx(net, (X,), "net.onnx")                    # dynamo exporter (torch 2.14 default)
    report = export_onnx(net, (X,), "net.onnx", exporter="legacy")  # TorchScript exporter, dynamo=False
    print(report)                                                  # abs and relative diffs, NOT VERIFIED
    export_onnx(net, (X,), "net.onnx", dynamic_batch=True)         # dim 0 symbolic, checked at batch 3
    legacy_unsupported_ops(net, (X,))                              # ['aten::asinh', ...] before you export
"""

import contextlib
import io
import math
import os
import re
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


class ExportFailedError(torch.onnx.errors.OnnxExporterError):
    """The dynamo exporter failed; the message says why (colour codes removed) and what to try."""


class DegenerateReferenceError(ValueError):
    """Every PyTorch output is empty or constant: agreeing with it would prove nothing."""


@dataclass
class ExportReport:
    path: Path
    exporter: str
    opset: int
    ir_version: int
    input_names: list[str]
    output_names: list[str]
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    max_rel_diff: dict[str, float] = field(default_factory=dict)  # max abs diff / max |reference|
    unverified: dict[str, str] = field(default_factory=dict)  # output -> why it proves nothing
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.max_rel_diff) and len(self.unverified) < len(self.output_names)

    def __str__(self) -> str:
        lines = [
            f"{self.path.name} ({self.exporter} exporter): opset {self.opset}, IR version {self.ir_version}",
            f"  inputs {self.input_names} -> outputs {self.output_names}",
        ]
        if not self.max_abs_diff:
            lines.append("  not verified")
        checked = {k: v for k, v in self.max_rel_diff.items() if k not in self.unverified}
        if checked:
            lines.append(f"  max abs diff vs PyTorch: {format_diffs(self.max_abs_diff)}")
            lines.append(f"  relative to each output's largest value: {format_diffs(checked)}")
        lines += [f"  NOT VERIFIED {name}: {why}" for name, why in self.unverified.items()]
        return "\n".join(lines + [f"  {note}" for note in self.notes])


def format_diffs(diffs: dict[str, float]) -> str:
    """'output0 < 1e-06, output1 = 0': each difference rounded up to the next power of ten.

    Float32 rounding differs between CPUs in the last digits; the order of magnitude does not.
    """
    parts = []
    for name, diff in diffs.items():
        if diff == 0:
            parts.append(f"{name} = 0")
        else:
            parts.append(f"{name} < 1e{math.floor(math.log10(diff)) + 1:+03d}")
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


def _flatten_outputs(outputs, path=()) -> list[tuple[tuple, torch.Tensor]]:
    """[(path, tensor)] in the order both exporters flatten outputs: tuples/lists by index, dicts by key."""
    if isinstance(outputs, torch.Tensor):
        return [(path, outputs)]
    if isinstance(outputs, (tuple, list)):
        return [leaf for i, out in enumerate(outputs) for leaf in _flatten_outputs(out, (*path, i))]
    if isinstance(outputs, dict):
        return [leaf for key, out in outputs.items() for leaf in _flatten_outputs(out, (*path, key))]
    raise TypeError(
        f"the model returned a {type(outputs).__name__}; ONNX outputs must be tensors "
        "(or tuples, lists or dicts of tensors): return tensors from forward()"
    )


def _default_names(paths: list[tuple]) -> list[str]:
    """'output0', 'output1'...; outputs that come from dicts are named by their keys ('out', 'boxes')."""
    keys = ["_".join(str(p) for p in path if isinstance(p, str)) for path in paths]
    if all(keys) and len(set(keys)) == len(keys):
        return keys
    return [f"output{i}" for i in range(len(paths))]


def _session(model_or_path) -> tuple[ort.InferenceSession, str]:
    if isinstance(model_or_path, onnx.ModelProto):
        source, label = model_or_path.SerializeToString(), "the ONNX model"
    else:
        path = Path(model_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty: expected an ONNX model (a serialized onnx.ModelProto)")
        source, label = str(path), path.name
    try:
        return ort.InferenceSession(source, providers=["CPUExecutionProvider"]), label
    except Exception as error:  # ORT's message for a file that is no ONNX model
        raise ValueError(f"{label} could not be loaded as an ONNX model: {error}") from None


def _run_both(model, model_or_path, inputs):
    session, label = _session(model_or_path)
    names = [i.name for i in session.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"{label} expects {len(names)} input(s) {names}, got {len(inputs)} tensor(s)")
    with torch.no_grad():
        expected = [t.detach().cpu().numpy() for _, t in _flatten_outputs(model(*inputs))]
    feeds = {n: x.detach().cpu().numpy() for n, x in zip(names, inputs, strict=True)}
    try:
        got = session.run(None, feeds)
    except Exception as error:
        shapes = {n: list(v.shape) for n, v in feeds.items()}
        raise ExportMismatchError(f"ONNX Runtime cannot run {label} on inputs {shapes}: {error}") from None
    out_names = [o.name for o in session.get_outputs()]
    if len(got) != len(expected):
        raise ValueError(f"{label} has {len(got)} output(s) {out_names}; PyTorch gave {len(expected)}")
    for name, g, e in zip(out_names, got, expected, strict=True):
        if g.shape != e.shape:
            raise ExportMismatchError(f"output {name!r}: ONNX Runtime shape {g.shape}, PyTorch {e.shape}")
    return out_names, got, expected


def compare_with_onnxruntime(model: torch.nn.Module, onnx_model, inputs) -> dict[str, float]:
    """Run the model in PyTorch and the ONNX model (path or ModelProto) in ONNX Runtime on the same inputs.

    Returns {output name: max abs difference}. Raises if the input count or an output shape differs.
    """
    names, got, expected = _run_both(model, onnx_model, _as_tuple(inputs))
    return {n: _max_abs(g, e) for n, g, e in zip(names, got, expected, strict=True)}


def _max_abs(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if want.size else 0.0


def _scale(want: np.ndarray) -> float:
    return float(np.abs(want.astype(np.float64)).max()) if want.size else 0.0


def _degenerate(want: np.ndarray) -> str | None:
    """Why a reference output cannot show that the export is right, or None if it can."""
    if want.size == 0:
        return f"empty (shape {list(want.shape)}): nothing to compare"
    if want.size > 1 and np.all(want == want.flat[0]):
        return f"every value is {want.flat[0].item():g}: a constant output agrees with many wrong graphs"
    return None


def _match_rows(got: list[np.ndarray], want: list[np.ndarray], rtol: float):
    """Row order that makes `got` equal `want` when rows only swap among ties (detections of equal
    score come out in any order), or None. Every tensor of the group has the same number of rows."""
    n = len(want[0])
    a = np.concatenate([w.reshape(n, -1) / max(_scale(w), 1e-30) for w in want], axis=1)
    b = np.concatenate([g.reshape(n, -1) / max(_scale(w), 1e-30) for g, w in zip(got, want, strict=True)], 1)
    order = np.abs(a[:, None, :] - b[None, :, :]).max(-1).argmin(1)  # closest ORT row for each row
    if len(set(order.tolist())) != n:
        return None
    for w in want:  # a swap is a tie only if the 1-D values (scores) of both rows are equal
        if w.ndim == 1 and np.issubdtype(w.dtype, np.floating):
            if np.abs(w - w[order]).max() > rtol * _scale(w):
                return None
    return order


def _check(report, model, path, inputs, label, rtol, atol, paths) -> list[str]:
    """Compare one run; fill the report on the first run; return the messages of outputs that differ."""
    names, got, expected = _run_both(model, path, inputs)
    groups = {}  # outputs of one dict/list ({'boxes', 'scores', 'labels'}) may be matched row by row
    for i, p in enumerate(paths):
        groups.setdefault(p[:-1], []).append(i)
    for members in groups.values():
        rows = {expected[i].shape[:1] for i in members} | {got[i].shape[:1] for i in members}
        tensors_differ = any(
            _max_abs(got[i], expected[i]) > rtol * _scale(expected[i]) for i in members if expected[i].size
        )
        if len(members) > 1 and len(rows) == 1 and rows.pop() != (0,) and tensors_differ:
            order = _match_rows([got[i] for i in members], [expected[i] for i in members], rtol)
            if order is not None:
                for i in members:
                    got[i] = got[i][order]
                report.notes.append(f"{', '.join(names[i] for i in members)}{label}: rows compared "
                                    "independent of the order of ties")  # fmt: skip
    bad = []
    for name, g, e in zip(names, got, expected, strict=True):
        diff, scale = _max_abs(g, e), _scale(e)
        why = _degenerate(e)
        if not label:
            report.max_abs_diff[name] = diff
            report.max_rel_diff[name] = diff / scale if scale else (0.0 if diff == 0 else math.inf)
            if why:
                report.unverified[name] = why
        exact = np.issubdtype(e.dtype, np.integer) or e.dtype == bool
        allowed = 0.0 if exact else rtol * scale + min(atol, 0.01 * scale)  # the floor cannot swallow it
        if diff > allowed:
            relative = f"{diff / scale:.3g} of its largest value {scale:.3g}" if scale else "reference all 0"
            bad.append(f"{name}{label}: max abs diff {diff:.3g}, {relative}")
    return bad


def _other_batch(inputs: tuple, batch: int = 3) -> tuple:
    """Inputs with another batch size, to prove a dynamic batch dimension really is dynamic."""
    generator = torch.Generator().manual_seed(0)
    out = []
    for x in inputs:
        y = x[:1].repeat(batch, *([1] * (x.dim() - 1)))
        if y.is_floating_point():
            y = y + 0.1 * y.std().nan_to_num(1.0) * torch.randn(y.shape, generator=generator, dtype=y.dtype)
        out.append(y)
    return tuple(out)


ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
DATA_DEPENDENT = ("data-dependent", "DataDependent", "GuardOnDataDependentSymNode", "unbacked")


def _explain(error: Exception, exporter: str) -> str:
    """The exporter's message without colour codes, led by the exception torch.export raised inside."""
    text = ANSI_CODES.sub("", f"{type(error).__name__}: {error}").strip()
    lines = text.splitlines()
    inner = next((line for line in lines if line.startswith("<class '")), lines[0] if lines else "")
    head = re.sub(
        r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", inner
    )  # "<class 'torch.x.Error'>: ..." -> "Error: ..."
    body = "\n".join(lines[:20]) + (f"\n... ({len(lines) - 20} more lines)" if len(lines) > 20 else "")
    hint = ""
    if exporter == "dynamo" and any(key in text for key in DATA_DEPENDENT):
        hint = (
            "\nHint: a shape or a branch depends on the input values (non-maximum suppression, boolean "
            "masks, nonzero, `if x.sum() > 0`), which torch.export cannot trace as one graph. "
            "Try exporter='legacy' (dynamo=False), export the part before the data-dependent step, "
            "or bound the size with torch._check()."
        )
    return f"the {exporter} exporter failed: {head}{hint}\n\n{body}"


def _check_dynamic_batch(proto: onnx.ModelProto, path: Path) -> None:
    fixed = [
        f"{i.name} (dim 0 = {i.type.tensor_type.shape.dim[0].dim_value})"
        for i in proto.graph.input
        if i.type.tensor_type.shape.dim and not i.type.tensor_type.shape.dim[0].dim_param
    ]
    if fixed:
        raise ExportFailedError(
            f"{path.name}: dynamic_batch=True but the file fixes the batch dimension of {fixed}: "
            "the exporter specialised it (dynamo does so for an example batch of 1)"
        )


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
    atol: float = 1e-6,
) -> ExportReport:
    """Export to one self-contained .onnx file, check it with onnx.checker and compare with ONNX Runtime.

    exporter="dynamo" uses torch.export (opset >= 18, dynamic_shapes); "legacy" the TorchScript exporter
    (dynamo=False, dynamic_axes). Outputs may be tensors or tuples, lists and dicts of them. Each output
    must agree within rtol of its own largest value (atol adds an absolute floor, capped at 1 % of that
    value so it cannot swallow the output); an empty or constant reference proves nothing and is listed
    as NOT VERIFIED (DegenerateReferenceError if all are). dynamic_batch makes dimension 0 of every input
    and output dynamic, checks the file says so, and verifies a batch of 3 too; dynamo specialises a
    batch of 1, so it exports from a batch of 2. Raises ExportMismatchError naming each output that
    differs, ExportFailedError with dynamo's message (and a hint) when that export fails.
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
        paths = [p for p, _ in _flatten_outputs(model(*inputs))]
    if output_names and len(output_names) > len(paths):
        raise ValueError(f"{len(output_names)} output names {output_names} for {len(paths)} model outputs")
    output_names = [*(output_names or []), *_default_names(paths)[len(output_names or []) :]]

    if exporter == "legacy":  # its errors name the operator already: they pass through unchanged
        axes = {name: {0: "batch"} for name in [*input_names, *output_names]} if dynamic_batch else None
        with warnings.catch_warnings(), quiet_native_output():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # dynamo=False was asked for
            torch.onnx.export(
                model, inputs, str(path), dynamo=False, opset_version=opset or LEGACY_DEFAULT_OPSET,
                input_names=input_names, output_names=output_names, dynamic_axes=axes,
            )  # fmt: skip
    else:
        shapes = tuple({0: torch.export.Dim("batch")} for _ in inputs) if dynamic_batch else None
        # torch.export specialises a dimension whose example size is 1: trace with a batch of 2.
        traced = _other_batch(inputs, 2) if dynamic_batch and inputs[0].shape[0] == 1 else inputs
        try:
            with quiet_native_output():  # progress lines, and pages of graph dump when it fails
                torch.onnx.export(
                    model, traced, str(path), dynamo=True, opset_version=opset, input_names=input_names,
                    output_names=output_names, dynamic_shapes=shapes, external_data=False, verbose=False,
                )  # fmt: skip
        except Exception as error:
            raise ExportFailedError(_explain(error, exporter)) from error

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    if dynamic_batch:
        _check_dynamic_batch(proto, path)
    report = ExportReport(
        path=path,
        exporter=exporter,
        opset=next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        ir_version=proto.ir_version,
        input_names=[i.name for i in proto.graph.input],
        output_names=[o.name for o in proto.graph.output],
    )
    if verify:
        checks = [("", inputs)] + ([(" (batch 3)", _other_batch(inputs))] if dynamic_batch else [])
        for label, xs in checks:
            bad = _check(report, model, path, xs, label, rtol, atol, paths)
            if bad:
                raise ExportMismatchError(
                    f"{path.name} differs from PyTorch beyond rtol={rtol} of each output's largest value: "
                    + "; ".join(bad)
                )
        if len(report.unverified) == len(report.output_names):
            raise DegenerateReferenceError(
                f"{path.name} exported, but no output can be verified: "
                + "; ".join(f"{n}: {why}" for n, why in report.unverified.items())
                + ". Use inputs and weights that make the outputs vary."
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
    # Seeded, and no ReLU last: an all-zero output is refused as unverifiable (DegenerateReferenceError).
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        report = export_onnx(net, (torch.rand(2, 4),), Path(tmp) / "net.onnx", exporter="legacy")
    assert max(report.max_abs_diff.values()) < 1e-5, report
