"""The torchvision zoo as a test bench for snippets/onnx_export.py and snippets/layerwise_diff.py.

`make zoo` (python -m tools.zoo) exports every model below with both exporters, verifies each file
against PyTorch, then injects one fault at a time into a copy of the model (a mid-graph weight times
1 + 5 % noise, or one activation changed) and checks that the layer diff names the faulted layer or the
row after it; clean exports must not be flagged. Weights are random (weights=None, nothing downloads),
seeded, with non-trivial batch-norm statistics so no output collapses to a constant.
tests/test_onnx_zoo.py runs SUBSET the same way.
"""

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from snippets.layerwise_diff import layerwise_diff  # noqa: E402
from snippets.onnx_export import export_onnx  # noqa: E402

IMAGE = (1, 3, 64, 64)
DETECTION = (1, 3, 128, 128)
VIDEO = (1, 3, 4, 32, 32)
SMALL_DETECTOR = {"min_size": 128, "max_size": 128, "weights_backbone": None}
# name: (task, input shape, constructor arguments)
ZOO = {
    "resnet18": ("classification", IMAGE, {}),
    "resnet50": ("classification", IMAGE, {}),
    "alexnet": ("classification", (1, 3, 96, 96), {}),
    "vgg11": ("classification", IMAGE, {}),
    "squeezenet1_0": ("classification", IMAGE, {}),
    "densenet121": ("classification", IMAGE, {}),
    "googlenet": ("classification", IMAGE, {"aux_logits": False, "init_weights": True}),
    "shufflenet_v2_x0_5": ("classification", IMAGE, {}),
    "mobilenet_v2": ("classification", IMAGE, {}),
    "mobilenet_v3_small": ("classification", IMAGE, {}),
    "mnasnet0_5": ("classification", IMAGE, {}),
    "efficientnet_b0": ("classification", IMAGE, {}),
    "regnet_y_400mf": ("classification", IMAGE, {}),
    "convnext_tiny": ("classification", IMAGE, {}),
    "vit_b_16": ("classification", (1, 3, 32, 32), {"image_size": 32}),
    "swin_t": ("classification", IMAGE, {}),
    "maxvit_t": ("classification", (1, 3, 224, 224), {}),  # its window partition needs 224
    "fcn_resnet50": ("segmentation", IMAGE, {"weights_backbone": None, "aux_loss": True}),
    "deeplabv3_mobilenet_v3_large": ("segmentation", IMAGE, {"weights_backbone": None}),
    "lraspp_mobilenet_v3_large": ("segmentation", IMAGE, {"weights_backbone": None}),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        "detection",
        DETECTION,
        {**SMALL_DETECTOR, "box_score_thresh": 0.0},
    ),
    "retinanet_resnet50_fpn": ("detection", DETECTION, {**SMALL_DETECTOR, "score_thresh": 0.0}),
    "fcos_resnet50_fpn": ("detection", DETECTION, {**SMALL_DETECTOR, "score_thresh": 0.0}),
    # SSD models resize every image to their fixed size (320, 300) inside the model.
    "ssdlite320_mobilenet_v3_large": (
        "detection",
        DETECTION,
        {"weights_backbone": None, "score_thresh": 0.0},
    ),
    "ssd300_vgg16": ("detection", DETECTION, {"weights_backbone": None, "score_thresh": 0.0}),
    "r3d_18": ("video", VIDEO, {}),
    "mc3_18": ("video", VIDEO, {}),
}
# Small configurations of torchvision's own architectures, so CI can afford attention models.
SMALL = {
    "vit_tiny": ("classification", (1, 3, 32, 32), lambda: torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=48, mlp_dim=96, num_classes=10)),
    "swin_tiny": ("classification", (1, 3, 32, 32), lambda: torchvision.models.SwinTransformer(
        patch_size=[2, 2], embed_dim=24, depths=[2, 2], num_heads=[2, 2], window_size=[4, 4], num_classes=8)),
}  # fmt: skip
# What CI runs (tests/test_onnx_zoo.py): every task and every kind of fault, small and quick to export.
SUBSET = [
    "resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "mnasnet0_5",
    "squeezenet1_0", "regnet_y_400mf", "vit_tiny", "swin_tiny", "lraspp_mobilenet_v3_large", "r3d_18",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
]  # fmt: skip
# Where an exporter cannot: dynamo fails on every detector (data-dependent sizes in NMS; make zoo shows it).
CI_EXPORTERS = {"fasterrcnn_mobilenet_v3_large_320_fpn": ("legacy",)}
EXPORTERS = ("dynamo", "legacy")


def build(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """Model `name` with random weights and statistics that keep every layer's output varied."""
    torch.manual_seed(seed)
    if name in SMALL:
        task, shape, make = SMALL[name]
        net = make()
    else:
        task, shape, kwargs = ZOO[name]
        builder = {"segmentation": torchvision.models.segmentation, "detection": torchvision.models.detection,
                   "video": torchvision.models.video}.get(task, torchvision.models)  # fmt: skip
        net = getattr(builder, name)(weights=None, **kwargs)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):  # running stats of a trained net
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
        for param in net.parameters():
            if param.dim() > 1 and not param.any():  # zero-initialised heads (ViT) give all-zero outputs
                param.normal_(0, 0.02)
    return net.eval(), torch.rand(shape, generator=torch.Generator().manual_seed(seed))


class _Scaled(nn.Module):
    """GELU (or Softmax) whose input is multiplied by 1.1: a wrong constant in an export rule."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(1.1 * x)


def _activation_fault(module):
    if type(module) is nn.ReLU:
        return "ReLU->LeakyReLU(0.1)", nn.LeakyReLU(0.1)
    if type(module) is nn.ReLU6:
        return "ReLU6 lower clip -1", nn.Hardtanh(-1.0, 6.0)
    if type(module) is nn.Sigmoid:
        return "Sigmoid->Hardsigmoid", nn.Hardsigmoid()
    if type(module) in (nn.GELU, nn.Softmax):
        return f"{type(module).__name__} input x1.1", _Scaled(module)
    return None


def faults(net: nn.Module, called) -> list[tuple[str, str]]:
    """[(fault, module name)]: one weight fault and one activation fault, each half-way down the net,
    among the modules `called` as modules (MultiheadAttention uses its out_proj's weight functionally)."""
    modules = [(n, m) for n, m in net.named_modules() if n in called]
    names = [n for n, m in modules if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear))]
    found = [("weight x(1+0.05 noise)", names[len(names) // 2])] if names else []
    acts = [(n, _activation_fault(m)[0]) for n, m in modules if _activation_fault(m)]
    if acts:
        name, kind = acts[len(acts) // 2]
        found.append((kind, name))
    return found


def inject(net: nn.Module, fault: str, name: str) -> nn.Module:
    """A copy of `net` with `fault` at module `name` (the module keeps its name, so the diff can find it)."""
    faulty = copy.deepcopy(net)
    module = faulty.get_submodule(name)
    if fault.startswith("weight"):
        with torch.no_grad():
            noise = torch.randn(module.weight.shape, generator=torch.Generator().manual_seed(1))
            module.weight.mul_(1 + 0.05 * noise)
    else:
        parent, _, attr = name.rpartition(".")
        setattr(faulty.get_submodule(parent) if parent else faulty, attr, _activation_fault(module)[1])
    return faulty.eval()


def call_order(net: nn.Module, X: torch.Tensor) -> dict[str, list[int]]:
    """{module name: positions at which its calls finish}, the order the layer diff's rows follow."""
    order, handles = {}, []
    for name, module in net.named_modules():
        if name:
            hook = lambda m, a, o, name=name: order.setdefault(name, []).append(sum(map(len, order.values())))  # noqa: E731
            handles.append(module.register_forward_hook(hook))
    with torch.no_grad():
        net(X)
    for handle in handles:
        handle.remove()
    return order


def _position(layer: str, order: dict) -> int:
    name, _, call = layer.split("+")[0].partition("#")
    return order[name][int(call or 1) - 1]


def _hit(table, name: str, order: dict) -> bool:
    """The diff names the faulted layer or the row after it: with rows in call order, the first
    divergent row is one of the first two rows at or after the faulted module's first call."""
    first = table.attrs["first_divergent"]
    if first is None:
        return False
    compared = table[table["note"].isin(["", "reference is all zero"])]
    after = sorted(
        p for p in map(lambda layer: _position(layer, order), compared["layer"]) if p >= order[name][0]
    )
    return _position(first, order) in after[:2]


def run_model(name: str, exporter: str, folder: Path, with_faults="all") -> dict:
    """Export, verify, diff the clean export, then one export + diff per injected fault
    (with_faults="one": one fault, the weight fault for dynamo and the activation fault for legacy)."""
    row = {"model": name, "exporter": exporter, "ok": False, "max_rel_diff": None, "cause": "",
           "false_alarm": False, "faults": []}  # fmt: skip
    start = time.perf_counter()
    path = folder / f"{name}_{exporter}.onnx"
    try:
        net, X = build(name)
        report = export_onnx(net, (X,), path, exporter=exporter)
        row["ok"] = report.verified
        row["max_rel_diff"] = max(report.max_rel_diff.values())
        row["cause"] = "; ".join(f"{k}: {v}" for k, v in report.unverified.items())
    except Exception as error:
        message = str(error).splitlines()[0] if str(error) else ""
        hint = " [with a hint]" if "Hint:" in str(error) else ""
        row["cause"] = f"{type(error).__name__}: {message[:200]}{hint}"
    row["export_s"] = time.perf_counter() - start
    if row["ok"] and with_faults:
        table = layerwise_diff(net, path, (X,))
        row["false_alarm"] = table.attrs["first_divergent"] is not None
        row["rows"] = len(table)
        row["skipped"] = int((table["note"] != "").sum())
        if row["false_alarm"]:
            row["cause"] = f"clean export flagged at {table.attrs['first_divergent']}"
        order = call_order(net, X)
        chosen = faults(net, order)
        if with_faults in ("one", "clean"):
            chosen = chosen[EXPORTERS.index(exporter) % len(chosen) :][: int(with_faults == "one")]
        for fault, module in chosen:
            faulty = inject(net, fault, module)
            fpath = folder / f"{name}_{exporter}_fault.onnx"
            export_onnx(faulty, (X,), fpath, exporter=exporter, verify=False)
            table = layerwise_diff(net, fpath, (X,))
            row["faults"].append({"fault": fault, "module": module, "found": _hit(table, module, order),
                                  "first": table.attrs["first_divergent"]})  # fmt: skip
    row["seconds"] = time.perf_counter() - start
    return row


def format_rows(rows: list[dict]) -> str:
    lines = [
        f"{'model':<38} {'exporter':<8} {'ok':<3} {'max rel':>8} {'time s':>7} {'rows':>5}  faults found"
    ]
    for r in rows:
        rel = "-" if r["max_rel_diff"] is None else f"{r['max_rel_diff']:.0e}"
        found = ", ".join(f"{f['fault']} @ {f['module']}: " + ("yes" if f["found"] else f"NO ({f['first']})")
                          for f in r["faults"])  # fmt: skip
        lines.append(f"{r['model']:<38} {r['exporter']:<8} {'yes' if r['ok'] else 'no':<3} {rel:>8} "
                     f"{r['seconds']:7.1f} {r.get('rows', '-'):>5}  {found}")  # fmt: skip
        if r["cause"]:
            lines.append(f"{'':<38} cause: {r['cause']}")
    cases = [f for r in rows for f in r["faults"]]
    hits = sum(f["found"] for f in cases)
    alarms = sum(r["false_alarm"] for r in rows)
    lines.append(f"fault found in {hits}/{len(cases)} (model, exporter, fault) cases; "
                 f"false alarms on clean exports: {alarms}/{sum(r['ok'] for r in rows)}")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="names from the zoo (default: all)")
    parser.add_argument("--ci", action="store_true", help="what tests/test_onnx_zoo.py runs")
    parser.add_argument("--no-faults", action="store_true", help="export and verify only")
    parser.add_argument("--clean-only", action="store_true", help="no faults, but diff the clean export")
    args = parser.parse_args(argv)
    names = args.models or (SUBSET if args.ci else list(ZOO))
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for exporter in CI_EXPORTERS.get(name, EXPORTERS) if args.ci else EXPORTERS:
                chosen = "clean" if args.clean_only else "one" if args.ci else "all"
                chosen = None if args.no_faults else chosen
                rows.append(run_model(name, exporter, Path(tmp), with_faults=chosen))
                print("\n".join(format_rows(rows[-1:]).splitlines()[1:-1]), flush=True)
    print(format_rows(rows))
    cases = [f for r in rows for f in r["faults"]]
    bad = sum(r["false_alarm"] for r in rows) or (
        cases and sum(f["found"] for f in cases) < 0.95 * len(cases)
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
