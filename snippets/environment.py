"""Report the versions a result was produced with: the "tested with" table of every lesson.

Taught in: lessons/00_start_here.ipynb. Needs: Python 3.9+ only; torch is reported when installed.
Copy this file anywhere and call `tested_with()` or `print(format_versions(tested_with()))`.
"""

import importlib.metadata
import platform

DEFAULT_PACKAGES = (
    "torch",
    "torchvision",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "numpy",
    "litert-torch",
    "ai-edge-litert",
    "tflite-micro",
    "tensorflow-cpu",
)


def package_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def tested_with(packages=DEFAULT_PACKAGES, *, include_python: bool = True) -> dict[str, str]:
    """Python and package versions of the running environment, in a stable order.

    Lessons pass include_python=False: the Python patch release differs between fresh machines,
    while the packages are pinned exactly.
    """
    versions = {"python": platform.python_version()} if include_python else {}
    versions.update({name: package_version(name) for name in packages})
    return versions


def device_summary() -> dict[str, str]:
    """CPU/GPU facts worth pasting into a bug report; CUDA fields are guarded when there is no GPU."""
    summary = {"machine": platform.machine(), "system": platform.system()}
    try:
        import torch
    except ImportError:
        return summary
    summary["cuda available"] = str(torch.cuda.is_available())
    summary["cuda build"] = str(torch.version.cuda)
    if torch.cuda.is_available():
        summary["cudnn"] = str(torch.backends.cudnn.version())
        summary["gpu"] = torch.cuda.get_device_name(0)
    return summary


def format_versions(versions: dict[str, str]) -> str:
    """A two-column text table, one package a line."""
    width = max(len(k) for k in versions)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in versions.items())


def _self_check():
    table = tested_with(("pip",))
    assert table["python"].count(".") == 2 and "pip" in table
