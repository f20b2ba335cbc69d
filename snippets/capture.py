"""Capture what libraries say: the warning a call raises, silence during a noisy call, C-level stderr.

Taught in: lessons/05_training.ipynb. Needs: Python's standard library only.
`warning_from(call)` returns the first warning `call()` raises as "Category: message" (also one Python
already showed once); `quiet()` hides warnings inside a block (a noisy export); `c_stderr_to(path)` sends what
C/C++ code writes to file descriptor 2 (where `sys.stderr` cannot reach) into a file.
"""

import contextlib
import os
import warnings


def warning_from(call) -> str | None:
    """Run `call()` and return its first warning as "Category: message", or None if it warned nothing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # record it even if Python already showed it once
        call()
    if not caught:
        return None
    return f"{caught[0].category.__name__}: {caught[0].message}"


@contextlib.contextmanager
def quiet():
    """Hide every Python warning raised inside the block (C-level output is not affected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def c_stderr_to(path):
    """Redirect file descriptor 2 (what C/C++ libraries write to stderr) into the file at `path`."""
    saved = os.dup(2)
    with open(path, "w") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _self_check():
    def old_api():
        warnings.warn("old", DeprecationWarning, stacklevel=2)

    assert warning_from(old_api) == "DeprecationWarning: old"
    assert warning_from(lambda: None) is None
