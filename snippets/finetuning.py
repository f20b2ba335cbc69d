"""Fine-tuning helpers: parameter groups with their own learning rates, features from several layers.

Taught in: lessons/06_finetuning_and_features.ipynb. Needs: torch.
`param_groups(net, {"fc": 1e-2}, base_lr=1e-3)` gives an optimizer list in which every trainable
parameter appears exactly once; `LayerFeatures(net, ["layer1", "fc"])` collects outputs with forward hooks.
"""

import torch
from torch import nn


def param_groups(net: nn.Module, lrs_by_prefix: dict[str, float], *, base_lr: float) -> list[dict]:
    """Optimizer parameter groups: parameters whose name starts with a prefix get that prefix's lr.

    The rest share base_lr. Frozen parameters (requires_grad=False) are left out.
    """
    named = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    groups, taken = [], set()
    for prefix, lr in lrs_by_prefix.items():
        params = [p for n, p in named if (n == prefix or n.startswith(prefix + ".")) and n not in taken]
        if not params:
            names = [n for n, _ in named]
            raise ValueError(f"prefix {prefix!r} matches no trainable parameter; trainable names: {names}")
        taken |= {n for n, _ in named if n == prefix or n.startswith(prefix + ".")}
        groups.append({"params": params, "lr": lr, "name": prefix})
    rest = [p for n, p in named if n not in taken]
    if rest:
        groups.append({"params": rest, "lr": base_lr, "name": "base"})
    return groups


class LayerFeatures:
    """Context manager: `with LayerFeatures(net, names) as feats: net(X)` fills feats[name] per layer."""

    def __init__(self, net: nn.Module, names):
        modules = dict(net.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise KeyError(f"no module named {missing} in the model; available: {[n for n in modules if n]}")
        self.modules = {n: modules[n] for n in names}
        self.outputs: dict[str, torch.Tensor] = {}
        self.handles = []

    def __enter__(self) -> dict[str, torch.Tensor]:
        for name, module in self.modules.items():
            self.handles.append(module.register_forward_hook(self._store(name)))
        return self.outputs

    def _store(self, name):
        def hook(module, args, output):
            self.outputs[name] = output.detach()  # detach: keep the features, not the graph behind them

        return hook

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()  # hooks left behind would keep running (and holding memory) on every forward
        self.handles.clear()


def _self_check():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with LayerFeatures(net, ["0", "2"]) as feats:
        net(torch.zeros(1, 2))
    assert feats["0"].shape == (1, 3) and feats["2"].shape == (1, 1)
    assert [g["lr"] for g in param_groups(net, {"2": 0.1}, base_lr=0.01)] == [0.1, 0.01]
