"""Pytest plugin: how long each lesson takes under nbval, reported against its budget.

A report, not a test: timings vary with the machine, so nothing here can fail the run.
The table is also written to build/lesson_times.json for `make bench`.
"""

import json
from collections import defaultdict
from pathlib import Path

LESSON_BUDGET_S = 60.0
ALL_LESSONS_BUDGET_S = 8 * 60.0
TIMES_FILE = Path("build/lesson_times.json")

_seconds = defaultdict(float)
_failed = set()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _seconds[path] += report.duration
        if report.failed:
            _failed.add(path)


def format_table(times: dict[str, float]) -> str:
    lines = [f"{'lesson':<44} {'seconds':>8} {'budget':>7}  verdict"]
    for path, s in sorted(times.items()):
        verdict = "over budget" if s > LESSON_BUDGET_S else "ok"
        lines.append(f"{Path(path).name:<44} {s:8.1f} {LESSON_BUDGET_S:7.0f}  {verdict}")
    total = sum(times.values())
    verdict = "over budget" if total > ALL_LESSONS_BUDGET_S else "ok"
    lines.append(f"{'all lessons':<44} {total:8.1f} {ALL_LESSONS_BUDGET_S:7.0f}  {verdict}")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    terminalreporter.section("lesson run times (nbval, this machine)")
    terminalreporter.write_line(format_table(_seconds))
    for path in sorted(_failed):
        terminalreporter.write_line(f"FAILED cells in {path}")
    TIMES_FILE.parent.mkdir(parents=True, exist_ok=True)
    TIMES_FILE.write_text(json.dumps(dict(_seconds), indent=1))
