"""The Chinese edition's bookkeeping (issue 17): what is translated, what is stale, what is missing.

Formats (one rule each, so a translator needs nothing else):
- A page or recipe `cookbook/<path>.md` is translated in `cookbook/<path>.zh.md`, whose first line is
  `<!-- translation of <path>.md @ <fingerprint> -->` (path relative to cookbook/).
- A lesson `lessons/<name>.ipynb` is translated per markdown cell in `translations/zh/lessons/<name>.yml`:
  a mapping from the cell's id to `{en: <fingerprint of that cell's source>, zh: <the Chinese markdown>}`.
  Code cells are never translated: the Chinese notebook reuses them, outputs included.
- fingerprint = the first 12 hex digits of sha256 over the English text (file bytes, or the cell source as
  UTF-8), so any change to the English, even a typo fix, asks for a look at the translation.

    python tools/i18n.py stale              # every missing or stale translation, one line each
    python tools/i18n.py skeleton lessons/05_training.ipynb   # a .yml to fill (keeps what is translated)
    python tools/i18n.py fingerprint cookbook/faq.md          # the line a page's translation starts with

Terminology lives in translations/zh/glossary.yml (English term -> Chinese term); tests/test_i18n.py checks
that every translated page and cell uses it. The site (tools/docsite/i18n_site.py) builds the Chinese pages
under zh/; a Chinese lesson is made here from the executed English notebook (chinese_notebook), never run.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COOKBOOK = ROOT / "cookbook"
LESSONS = ROOT / "lessons"
LESSON_TRANSLATIONS = ROOT / "translations" / "zh" / "lessons"
GLOSSARY = ROOT / "translations" / "zh" / "glossary.yml"
# What a Chinese lesson shows where a cell has no current translation: the English, marked (never silence).
UNTRANSLATED_CELL = "> **尚未翻译：** 本段还没有中文译文，下面是英文原文。\n\n"
STALE_CELL = "> **译文待更新：** 英文原文在翻译之后改过，本段译文可能已过时。\n\n"


def fingerprint(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()[:12]


def header(page: Path) -> str:
    rel = page.relative_to(COOKBOOK).as_posix()
    return f"<!-- translation of {rel} @ {fingerprint(page.read_bytes())} -->"


def english_pages() -> list[Path]:
    return sorted(p for p in COOKBOOK.rglob("*.md") if not p.name.endswith(".zh.md"))


def markdown_cells(notebook: Path) -> list[dict]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        {"id": c["id"], "source": "".join(c["source"]) if isinstance(c["source"], list) else c["source"]}
        for c in cells
        if c["cell_type"] == "markdown"
    ]


def load_lesson_translation(notebook: Path) -> dict:
    path = LESSON_TRANSLATIONS / f"{notebook.stem}.yml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping cell id -> {{en, zh}}, got {type(data).__name__}")
    return data


def zh_page(page: Path) -> Path:
    return page.with_name(page.stem + ".zh.md")


def page_state(page: Path) -> str:
    """'current', 'stale' or 'missing': the translation of one English page."""
    zh = zh_page(page)
    if not zh.exists():
        return "missing"
    first = zh.read_text(encoding="utf-8").split("\n", 1)[0].strip()
    return "current" if first == header(page) else "stale"


def translated_body(zh: Path) -> str:
    """A .zh.md without its first line (the `translation of` header), as mkdocs should read it."""
    return zh.read_text(encoding="utf-8").split("\n", 1)[1] if zh.exists() else ""


def cell_source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def marked(note: str, text: str) -> str:
    """The note on top of a cell, or under its first line when that is the lesson's title (# ...)."""
    if text.startswith("# "):
        title, _, rest = text.partition("\n")
        return f"{title}\n\n{note}{rest.lstrip(chr(10))}"
    return note + text


def chinese_notebook(notebook: Path) -> tuple[dict, dict[str, str]]:
    """The Chinese lesson: the English notebook with each markdown cell's source replaced by its translation.

    Code cells, outputs and metadata are the English notebook's, untouched. Returns the notebook and
    {cell id: 'missing' | 'stale'} for the cells that show the English (missing) or a marked old translation.
    """
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    done = load_lesson_translation(notebook)
    problems = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        english = cell_source(cell)
        entry = done.get(cell.get("id"))
        if entry is None or entry.get("todo") or not entry.get("zh"):
            problems[cell.get("id")] = "missing"
            text = marked(UNTRANSLATED_CELL, english)
        elif entry.get("en") != fingerprint(english):
            problems[cell.get("id")] = "stale"
            text = marked(STALE_CELL, entry["zh"])
        else:
            text = entry["zh"]
        cell["source"] = text.splitlines(keepends=True)
    return nb, problems


def load_glossary() -> dict[str, dict]:
    """English term -> {zh: Chinese term, en: [regex], accept: [Chinese]} (translations/zh/glossary.yml)."""
    data = yaml.safe_load(GLOSSARY.read_text(encoding="utf-8")) or {}
    terms = data.get("terms", {})
    return {en: (v if isinstance(v, dict) else {"zh": v}) for en, v in terms.items()}


def stale() -> list[str]:
    """One line per problem: missing page, stale page, missing cell, stale cell, orphan cell."""
    problems = []
    for page in english_pages():
        zh = page.with_name(page.stem + ".zh.md")
        rel = page.relative_to(COOKBOOK).as_posix()
        if not zh.exists():
            problems.append(f"missing  cookbook/{rel}")
            continue
        first = zh.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        if first != header(page):
            problems.append(f"stale    cookbook/{rel} (first line should be: {header(page)})")
    for notebook in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")):
        done = load_lesson_translation(notebook)
        ids = set()
        for cell in markdown_cells(notebook):
            ids.add(cell["id"])
            entry = done.get(cell["id"])
            if entry is None:
                problems.append(f"missing  {notebook.name} cell {cell['id']}")
            elif entry.get("en") != fingerprint(cell["source"]):
                problems.append(f"stale    {notebook.name} cell {cell['id']}")
            elif entry.get("todo"):
                problems.append(f"todo     {notebook.name} cell {cell['id']} (still marked todo: true)")
        for orphan in sorted(set(done) - ids):
            problems.append(f"orphan   {notebook.name} cell {orphan} (no such markdown cell in the English)")
    return problems


def skeleton(notebook: Path) -> Path:
    """Write (or extend) the notebook's .yml: current cells stay; a stale cell keeps its old Chinese and a new
    one gets the English, both marked `todo: true` until a translator updates them."""
    done = load_lesson_translation(notebook)
    out = {}
    for cell in markdown_cells(notebook):
        entry = done.get(cell["id"])
        if entry is not None and entry.get("en") == fingerprint(cell["source"]):
            out[cell["id"]] = entry
        elif entry is not None and entry.get("zh") and not entry.get("todo"):  # stale: keep the old Chinese
            out[cell["id"]] = {"en": fingerprint(cell["source"]), "zh": entry["zh"], "todo": True}
        else:
            out[cell["id"]] = {"en": fingerprint(cell["source"]), "zh": cell["source"], "todo": True}
    path = LESSON_TRANSLATIONS / f"{notebook.stem}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)

    class Block(str):
        pass

    def block(dumper, text):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)

    yaml.add_representer(str, block)
    path.write_text(yaml.dump(out, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stale")
    s = sub.add_parser("skeleton")
    s.add_argument("notebook", type=Path)
    f = sub.add_parser("fingerprint")
    f.add_argument("page", type=Path)
    args = parser.parse_args(argv)
    if args.command == "stale":
        problems = stale()
        print(
            "\n".join(problems + [f"{len(problems)} to do"])
            if problems
            else "every page and lesson cell has a current translation"
        )
        return 1 if problems else 0
    if args.command == "skeleton":
        print(skeleton(args.notebook.resolve()).relative_to(ROOT))
        return 0
    print(header(args.page.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
