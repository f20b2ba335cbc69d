"""capture: warnings as Python reports them, and fd 2 as a child process writing to it sees it."""

import subprocess
import sys
import warnings

import torch

from snippets.capture import c_stderr_to, quiet, warning_from


def test_warning_from_reports_a_real_library_warning_every_time():
    call = lambda: torch.nn.functional.mse_loss(torch.zeros(4, 1), torch.arange(4.0))  # noqa: E731
    first, second = warning_from(call), warning_from(call)  # Python would show it only once
    assert first == second and first.startswith("UserWarning: Using a target size")
    assert warning_from(lambda: torch.zeros(2) + 1) is None


def test_quiet_hides_warnings_and_restores_the_filters():
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with quiet():
            warnings.warn("hidden", UserWarning, stacklevel=2)
        warnings.warn("shown", UserWarning, stacklevel=2)
    assert [str(w.message) for w in outside] == ["shown"] and warnings.filters == before


def test_c_stderr_to_captures_file_descriptor_2(tmp_path, capfd):
    log = tmp_path / "c.log"
    with c_stderr_to(log):
        subprocess.run([sys.executable, "-c", "import os; os.write(2, b'from C land')"], check=True)
    assert log.read_text() == "from C land"
    assert "from C land" not in capfd.readouterr().err  # nothing leaked to the real stderr
