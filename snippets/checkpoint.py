"""Save and resume training safely: atomic checkpoints, safe loading, partial and prefixed state dicts.

Taught in: lessons/03_models.ipynb (state dicts) and lessons/05_training.ipynb (checkpoints).
Needs: torch. Loading always uses `torch.load(weights_only=True)`: a checkpoint is data, not code.
"""

import os
import pickle
import tempfile
from pathlib import Path

import torch
from torch import nn


def save_checkpoint(path, *, net: nn.Module, optimizer=None, epoch: int = 0, best_acc: float = 0.0, **extra):
    """Write model/optimizer state, epoch and best accuracy to `path` atomically.

    The file is written under a temporary name in the same folder and renamed over `path`, so a
    crash mid-write leaves the previous checkpoint intact instead of a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": net.state_dict(), "epoch": int(epoch), "best_acc": float(best_acc), **extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path, net: nn.Module, optimizer=None, *, map_location="cpu") -> dict:
    """Restore a checkpoint written by save_checkpoint; returns it (epoch, best_acc, ...).

    map_location="cpu" loads a checkpoint saved on a GPU on a machine without one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist (expected a file written by save_checkpoint)"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise ValueError(f"checkpoint {path} is corrupt or not a torch checkpoint: {e}") from e
    if not isinstance(state, dict) or "model" not in state:
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"checkpoint {path} has no 'model' entry (found {found}); expected save_checkpoint's format"
        )
    net.load_state_dict(strip_module_prefix(state["model"]))
    if optimizer is not None:
        if "optimizer" not in state:
            raise ValueError(f"checkpoint {path} holds no optimizer state, but an optimizer was given")
        optimizer.load_state_dict(state["optimizer"])
    return state


def strip_module_prefix(state_dict: dict, prefix: str = "module.") -> dict:
    """Remove the `module.` that DataParallel/DistributedDataParallel put before every key."""
    return {k.removeprefix(prefix): v for k, v in state_dict.items()}


def load_matching_state_dict(net: nn.Module, state_dict: dict) -> tuple[list[str], list[str]]:
    """Copy the entries whose name and shape match `net`; return (loaded, skipped) key lists.

    Raises ValueError naming both sides' keys when nothing matches (usually a prefix problem).
    """
    own = net.state_dict()
    state_dict = strip_module_prefix(state_dict)
    loaded = [k for k, v in state_dict.items() if k in own and own[k].shape == v.shape]
    skipped = [k for k in state_dict if k not in loaded]
    if not loaded:
        raise ValueError(
            "no key of the state dict matches the model by name and shape.\n"
            f"  state dict keys: {list(state_dict)[:8]}{' ...' if len(state_dict) > 8 else ''}\n"
            f"  model keys:      {list(own)[:8]}{' ...' if len(own) > 8 else ''}"
        )
    net.load_state_dict({k: state_dict[k] for k in loaded}, strict=False)
    return loaded, skipped


def _self_check():
    with tempfile.TemporaryDirectory() as d:
        net = nn.Linear(2, 2)
        save_checkpoint(Path(d) / "c.pt", net=net, epoch=3, best_acc=0.5)
        assert load_checkpoint(Path(d) / "c.pt", nn.Linear(2, 2))["epoch"] == 3
