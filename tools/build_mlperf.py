"""Build int8 models shaped like the four MLPerf Tiny reference models, for the firmware tests and bench
(`make mlperf-models`, part of `make models`). Weights are seeded and untrained: accuracy is not the point,
the shapes and the operators the converter emits are.

    python tools/build_mlperf.py kws_dscnn   # build/mlperf/kws_dscnn_int8.tflite + kws_dscnn_inputs.npy
    python tools/build_mlperf.py all

| name | shape (MLPerf Tiny v1.x reference) |
|---|---|
| kws_dscnn | 49x10x1 MFCCs, conv 10x4 stride 2 -> 64, four depthwise-separable blocks, average pool, FC 12 |
| vww_mobilenet | 96x96x3, MobileNetV1 alpha 0.25, global average pool, FC 2 |
| ic_resnet8 | 32x32x3, ResNet-8: three stacks 16/32/64, residual ADD, strided 1x1 shortcuts, MEAN, FC 10 |
| ad_autoencoder | 640 -> 128 x4 -> 8 -> 128 x4 -> 640 fully connected |

The route is the book's (snippets/litert_int8.py: litert-torch PT2E, BatchNorm folded first, per-channel
int8 weights). Two additions for these shapes: the residual ADD and MEAN get their own int8 annotation
(litert-torch 0.10's add annotator matches nothing with torch 2.14's export, which would leave a float ADD),
and the 2-D input of the autoencoder skips the NCHW -> NHWC wrapper. Each model ships 64 seeded float32
inputs (N x model input shape) for the tests.
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "build" / "mlperf"
SEED = 0
NUM_INPUTS = 64
CALIBRATION = 32
INPUT_SHAPES = {"kws_dscnn": (49, 10, 1), "vww_mobilenet": (96, 96, 3), "ic_resnet8": (32, 32, 3),
                "ad_autoencoder": (640,)}  # fmt: skip


def nets():
    """The four nets, in PyTorch (NCHW); built lazily so that `--help` needs no torch."""
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from snippets.kws_nets import softmax

    def conv_bn(cin, cout, k, stride=1, padding=0, groups=1):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, groups=groups), nn.BatchNorm2d(cout))

    class Net(nn.Module):
        def fused(self):
            """Every Conv2d + BatchNorm2d pair folded (the BN becomes Identity), as the book converts."""
            for m in self.modules():
                if isinstance(m, nn.Sequential) and len(m) == 2 and isinstance(m[1], nn.BatchNorm2d):
                    m[0] = fuse_conv_bn_eval(m[0], m[1])
                    m[1] = nn.Identity()
            return self

    class KwsDSCNN(Net):
        def __init__(self):
            super().__init__()
            self.conv = conv_bn(1, 64, (10, 4), 2, (5, 1))  # 49x10 -> 25x5, as Keras' padding='same'
            self.blocks = nn.ModuleList(
                nn.ModuleList([conv_bn(64, 64, 3, 1, 1, groups=64), conv_bn(64, 64, 1)]) for _ in range(4)
            )
            self.fc = nn.Linear(64, 12)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            for dw, pw in self.blocks:
                x = torch.relu(pw(torch.relu(dw(x))))
            x = nn.functional.avg_pool2d(x, kernel_size=x.shape[2:])
            return softmax(self.fc(x.reshape(x.shape[0], -1)))

    class MobileNetV1(Net):  # alpha = 0.25: 8 ... 256 channels
        def __init__(self):
            super().__init__()
            cfg = [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)]
            cfg += [(128, 128, 1)] * 5 + [(128, 256, 2), (256, 256, 1)]
            self.stem = conv_bn(3, 8, 3, 2, 1)
            self.blocks = nn.ModuleList(
                nn.ModuleList([conv_bn(ci, ci, 3, s, 1, groups=ci), conv_bn(ci, co, 1)]) for ci, co, s in cfg
            )
            self.fc = nn.Linear(256, 2)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            for dw, pw in self.blocks:
                x = torch.relu(pw(torch.relu(dw(x))))
            x = nn.functional.avg_pool2d(x, kernel_size=x.shape[2:])
            return softmax(self.fc(x.reshape(x.shape[0], -1)))

    class ResNet8(Net):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, 16, 3, 1, 1)
            self.stacks = nn.ModuleList()
            for ci, co, s in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
                short = conv_bn(ci, co, 1, s) if s != 1 else nn.Identity()  # strided 1x1 shortcut
                self.stacks.append(nn.ModuleList([conv_bn(ci, co, 3, s, 1), conv_bn(co, co, 3, 1, 1), short]))
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            for a, b, short in self.stacks:
                x = torch.relu(b(torch.relu(a(x))) + short(x))  # residual ADD
            x = x.mean(dim=(2, 3))  # global average as MEAN
            return softmax(self.fc(x))

    class AutoEncoder(Net):
        def __init__(self):
            super().__init__()
            sizes = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:], strict=False))
            self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in sizes[1:])
            self.out = nn.Linear(128, 640)

        def fused(self):
            for i, (fc, bn) in enumerate(
                zip(self.layers, self.norms, strict=True)
            ):  # fold BN1d into the Linear before it
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                with torch.no_grad():
                    fc.weight.mul_(scale[:, None])
                    fc.bias.copy_((fc.bias - bn.running_mean) * scale + bn.bias)
                self.norms[i] = nn.Identity()
            return self

        def forward(self, x):
            for fc, bn in zip(self.layers, self.norms, strict=True):
                x = torch.relu(bn(fc(x)))
            return self.out(x)

    return {"kws_dscnn": KwsDSCNN, "vww_mobilenet": MobileNetV1, "ic_resnet8": ResNet8,
            "ad_autoencoder": AutoEncoder}  # fmt: skip


def seeded_net(name):
    """Random weights and BatchNorm statistics from one seed, BN folded, eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    net = nets()[name]()
    for m in (
        net.modules()
    ):  # He init keeps the signal alive through 14 untrained blocks (torch's default shrinks it)
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.uniform_(m.bias, -0.1, 0.1)
    for m in net.modules():  # non-trivial BN statistics, so folding changes the weights
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    for m in net.modules():  # a wider spread of logits, so the int8 softmax outputs differ between inputs
        if isinstance(m, nn.Linear) and m.out_features <= 12:
            with torch.no_grad():
                m.weight.mul_(4.0)
    return net.eval().fused().eval()


def quantizer():
    """The book's Int8Quantizer, plus an int8 annotation for ADD and MEAN: inputs keep their producer's
    scale, the output gets its own observer (TFLite's int8 ADD and MEAN rescale between the two)."""
    import torch
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    from snippets import litert_int8

    aten = torch.ops.aten
    rescaling = {aten.add.Tensor, aten.mean.dim}

    class MlperfQuantizer(litert_int8.Int8Quantizer):
        def annotate(self, model):
            config = self.global_config
            for node in model.graph.nodes:
                if (
                    node.op == "call_function"
                    and node.target in rescaling
                    and "quantization_annotation" not in node.meta
                ):
                    sources = [a for a in node.args if isinstance(a, torch.fx.Node)]
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={s: config.input_activation for s in sources},
                        output_qspec=config.output_activation,
                        _annotated=True,
                    )
            model = super().annotate(model)  # then relu etc.; inputs already quantised upstream share scales
            for node in model.graph.nodes:
                annotation = node.meta.get("quantization_annotation")
                if node.target in rescaling and annotation is not None:
                    for s in list(annotation.input_qspec_map):
                        if litert_int8._output_qspec(s) is not None and s is not node:
                            annotation.input_qspec_map[s] = SharedQuantizationSpec(s)
            return model

    return MlperfQuantizer().set_global(litert_int8.get_symmetric_quantization_config(is_per_channel=True))


def convert(net, calibration: np.ndarray) -> bytes:
    """snippets/litert_int8.convert_int8 with the quantizer above; 4-D inputs become NHWC as there."""
    import litert_torch
    import torch
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if calibration.ndim == 4:
        net = litert_torch.to_channel_last_io(net, args=[0]).eval()
    sample = (torch.from_numpy(calibration[:1]),)
    q = quantizer()
    graph = prepare_pt2e(torch.export.export(net, sample).module(), q)
    for x in calibration:
        graph(torch.from_numpy(x[None]))
    graph = convert_pt2e(graph, fold_quantize=False)
    return litert_torch.convert(graph, sample, quant_config=QuantConfig(pt2e_quantizer=q)).model_content()


def seeded_inputs(shape, n):
    """Inputs that differ from each other in ways a global average keeps: a coarse 4x4 random pattern
    per input and channel, a random gain, plus fine noise (i.i.d. noise alone averages out, and the
    untrained nets would then answer every input with the same bytes: no test at all)."""
    rng = np.random.default_rng(SEED)
    if len(shape) == 1:
        return rng.standard_normal((n, *shape)).astype(np.float32)
    h, w, c = shape
    coarse = rng.standard_normal((n, 4, 4, c)) * rng.uniform(0.3, 2.0, (n, 1, 1, 1))
    pattern = coarse.repeat(-(-h // 4), axis=1).repeat(-(-w // 4), axis=2)[:, :h, :w]
    return (pattern + 0.3 * rng.standard_normal((n, h, w, c))).astype(np.float32)


def build(name):
    from snippets import tflite_inspect

    x = seeded_inputs(INPUT_SHAPES[name], CALIBRATION + NUM_INPUTS)
    data = convert(seeded_net(name), x[:CALIBRATION])
    info = tflite_inspect.inspect_tflite(data)
    types = {t.dtype for t in info.tensors}
    if types - {"int8", "int32"}:
        raise SystemExit(f"{name}: the converted model still has {sorted(types)} tensors: ops {info.ops}")
    (OUT / f"{name}_int8.tflite").write_bytes(data)
    np.save(OUT / f"{name}_inputs.npy", x[CALIBRATION:])
    return info


def main(argv):
    OUT.mkdir(parents=True, exist_ok=True)
    names = list(INPUT_SHAPES) if argv == ["all"] else argv
    for name in names:
        if name not in INPUT_SHAPES:
            raise SystemExit(f"unknown model {name!r}: expected one of {', '.join(INPUT_SHAPES)} or all")
        start = time.perf_counter()
        info = build(name)
        ops = sorted(set(info.ops))
        print(f"{name}: {len(info.ops)} ops {ops}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
