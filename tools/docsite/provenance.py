"""Where a page's claims come from: measured lesson times, tested-with versions, the commit and its date.

- Lesson times are measured by tests/lesson_timer.py (nbval, written to build/lesson_times.json by a test
  run on this checkout) or, failing that, read from tests/docsite/lesson_times.json, a copy of such a
  measurement committed with the date and machine it was taken on. No measurement: no time is shown.
- Versions are those of the environment that builds the site, for the packages a lesson imports.
- The commit is the last one that changed the page's source file (git at build time; none without git).
"""

import ast
import datetime
import functools
import importlib.metadata
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.cookbook")

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMES = ROOT / "build" / "lesson_times.json"  # written by tests/lesson_timer.py
COMMITTED_TIMES = ROOT / "tests" / "docsite" / "lesson_times.json"


@functools.cache
def lesson_times() -> dict[str, tuple[float, str]]:
    """{lesson file name: (seconds, where and when it was measured)}; a fresh test run wins."""
    times = {}
    try:
        saved = json.loads(COMMITTED_TIMES.read_text(encoding="utf-8"))
        note = f"measured {saved['measured']} on {saved['machine']}"
        times.update({Path(k).name: (float(v), note) for k, v in saved["seconds"].items()})
    except (OSError, ValueError, KeyError) as err:
        log.info("no committed lesson times (%s)", err)
    try:
        run = json.loads(RUN_TIMES.read_text(encoding="utf-8"))
        day = datetime.date.fromtimestamp(RUN_TIMES.stat().st_mtime).isoformat()
        times.update(
            {Path(k).name: (float(v), f"measured {day} by the last test run") for k, v in run.items()}
        )
    except (OSError, ValueError):
        pass
    return times


def lesson_time_text(name: str) -> str:
    """'about 12 s under nbval (measured ...)' or '' when the lesson has never been timed."""
    if name not in lesson_times():
        return ""
    seconds, note = lesson_times()[name]
    return f"about {max(1, round(seconds))} s under nbval ({note})"


# ----------------------------------------------------------------------------- what a lesson teaches
LEARN = re.compile(r"\*\*What you will learn(?: here)?:?\*\*:?\s*(.*?)(?:\n\s*\n|\n\*\*|$)", re.S)


def balanced(text: str) -> bool:
    return text.count("(") == text.count(")") and text.count("`") % 2 == 0 and text.count("**") % 2 == 0


def first_clause(text: str, limit: int = 150) -> str:
    """The text up to `limit` characters, cut after a whole clause (no open bracket or code span)."""
    text = re.sub(r"\s+", " ", text).strip().rstrip(";.")
    if len(text) <= limit:
        return text
    cuts = [m.start() for m in re.finditer(r";|,| — |:", text[:limit])]
    for cut in reversed(cuts):
        if cut > 40 and balanced(text[:cut]):
            return text[:cut].rstrip()
    words = text[: text.rfind(" ", 0, limit)]
    return words + " …" if balanced(words) else text


def learn_line(markdown: str) -> str:
    """The first point of the notebook's "What you will learn" paragraph or list, as one line."""
    m = LEARN.search(markdown)
    if not m:
        return ""
    body = m.group(1).strip()
    if body.startswith("- "):
        body = body[2:].split("\n- ")[0]
    elif body.lower().startswith("how "):
        body = re.split(r"(?<=;)|(?<=\.) ", body)[0]
    return first_clause(body)


# ----------------------------------------------------------------------------- versions
IMPORT_LINE = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.M)


def imported_modules(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython magics: fall back to lines that look like imports
        return set(IMPORT_LINE.findall(code))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@functools.cache
def module_owners() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans every installed package: once per build


def distributions(modules: set[str]) -> dict[str, str]:
    """{distribution: version} for the third-party modules in `modules` (stdlib and our own left out)."""
    owners = module_owners()
    found = {}
    for module in sorted(modules - set(sys.stdlib_module_names) - {"snippets", "tools", "tests"}):
        for dist in owners.get(module, []):
            if dist.lower().replace("_", "-") in {"deployment-cookbook"}:
                continue
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def notebook_versions(notebook: Path) -> dict[str, str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    modules = set()
    for block in code.split("\n\n"):
        modules |= imported_modules(block)
    return distributions(modules)


# ----------------------------------------------------------------------------- git
@functools.cache
def last_commit(path: Path) -> tuple[str, str] | None:
    """(short hash, commit date) of the last commit that changed `path`; None without git or history."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%h %cs", "--", str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    return (parts[0], parts[1]) if out.returncode == 0 and len(parts) == 2 else None


def provenance_line(path: Path, versions: dict[str, str]) -> str:
    """'Tested with torch 2.x, onnx 1.y · last changed in commit abc1234 (2026-11-30)' (HTML-free)."""
    parts = []
    if versions:
        parts.append("Tested with " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    commit = last_commit(path)
    if commit:
        parts.append(f"last changed in commit {commit[0]} ({commit[1]})")
    return " · ".join(parts)
