"""The Chinese edition is in sync with the English (issue 17): nothing missing, nothing stale, same code.

References are the English sources themselves: cookbook/**/*.md and the executed lessons/*.ipynb.
No site build here (tests/test_site.py checks the built zh/ pages). `python tools/i18n.py stale` lists
the same problems, one line each.
"""

import copy
import json
import re
from pathlib import Path

import pytest

from tools import i18n

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
PAGES = i18n.english_pages()
HOW = "update with `python tools/i18n.py stale` / `skeleton` (see tools/i18n.py)"


def listing(problems: list[str]) -> str:
    return f"{len(problems)} to do ({HOW}):\n" + "\n".join(problems)


# ----------------------------------------------------------------------------- sync
def test_every_page_has_a_current_translation():
    problems = [p for p in i18n.stale() if p.startswith(("missing  cookbook/", "stale    cookbook/"))]
    print(f"{len(PAGES) - len(problems)} of {len(PAGES)} pages translated and current")
    assert not problems, listing(problems)


def test_every_lesson_cell_has_a_current_translation():
    problems = [p for p in i18n.stale() if not p.split()[1].startswith("cookbook/")]
    cells = sum(len(i18n.markdown_cells(nb)) for nb in LESSONS)
    per_lesson: dict[str, int] = {}
    for p in problems:
        per_lesson[p.split()[1]] = per_lesson.get(p.split()[1], 0) + 1
    print(
        f"{cells - len(problems)} of {cells} markdown cells in {len(LESSONS)} lessons translated and current"
    )
    summary = [f"{name}: {n} cells" for name, n in sorted(per_lesson.items())]
    assert not problems, listing(problems) + "\nby lesson:\n" + "\n".join(summary)


def test_stale_finds_a_changed_english_page_and_cell(tmp_path, monkeypatch):
    """Injected faults: a one-character change to the English must make its translation stale."""
    page = tmp_path / "cookbook" / "x.md"
    page.parent.mkdir()
    page.write_text("# Title\n\nQuantisation.\n", encoding="utf-8")
    monkeypatch.setattr(i18n, "COOKBOOK", tmp_path / "cookbook")
    monkeypatch.setattr(i18n, "LESSONS", tmp_path / "lessons")
    monkeypatch.setattr(i18n, "LESSON_TRANSLATIONS", tmp_path / "yml")
    assert i18n.stale() == ["missing  cookbook/x.md"]
    (tmp_path / "cookbook" / "x.zh.md").write_text(
        i18n.header(page) + "\n# 标题\n\n量化。\n", encoding="utf-8"
    )
    assert i18n.stale() == []
    page.write_text("# Title\n\nQuantisation!\n", encoding="utf-8")
    assert i18n.stale()[0].startswith("stale    cookbook/x.md")
    nb = tmp_path / "lessons" / "01_x.ipynb"
    nb.parent.mkdir()
    cells = [{"id": "a1", "cell_type": "markdown", "source": ["# One\n"], "metadata": {}}]
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert "missing  01_x.ipynb cell a1" in i18n.stale()
    i18n.skeleton(nb)
    assert "todo     01_x.ipynb cell a1 (still marked todo: true)" in i18n.stale()
    cells[0]["source"] = ["# One!\n"]
    nb.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert "stale    01_x.ipynb cell a1" in i18n.stale()


# ----------------------------------------------------------------------------- same code
def code_differences(english: dict, chinese: dict) -> list[str]:
    """Where a Chinese notebook is not the English one with only markdown sources changed."""
    found = []
    if len(english["cells"]) != len(chinese["cells"]):
        return [f"{len(english['cells'])} cells in the English, {len(chinese['cells'])} in the Chinese"]
    for en, zh in zip(english["cells"], chinese["cells"], strict=True):
        if en["cell_type"] != zh["cell_type"] or en.get("id") != zh.get("id"):
            found.append(f"cell {en.get('id')}: type or id differs")
        elif en["cell_type"] != "markdown" and en != zh:
            keys = sorted(k for k in set(en) | set(zh) if en.get(k) != zh.get(k))
            found.append(f"code cell {en.get('id')}: {keys} differ")
    if english.get("metadata") != chinese.get("metadata"):
        found.append("notebook metadata differs")
    return found


@pytest.mark.parametrize("nb", LESSONS, ids=[p.stem for p in LESSONS])
def test_chinese_lesson_has_the_english_code_and_outputs(nb):
    english = json.loads(nb.read_text(encoding="utf-8"))
    chinese, problems = i18n.chinese_notebook(nb)
    assert not code_differences(english, chinese), code_differences(english, chinese)
    translations = i18n.load_lesson_translation(nb)
    for en, zh in zip(english["cells"], chinese["cells"], strict=True):
        if en["cell_type"] == "markdown":
            text = "".join(zh["source"])
            if en["id"] in problems:  # shown in English or as an old translation, marked so a reader sees it
                assert i18n.UNTRANSLATED_CELL in text or i18n.STALE_CELL in text, en["id"]
            else:
                assert text == translations[en["id"]]["zh"], en["id"]
    code = sum(c["cell_type"] == "code" for c in english["cells"])
    print(f"{nb.name}: {code} code cells identical, {len(problems)} markdown cells not (yet) translated")


def test_code_comparison_finds_an_injected_change():
    english = json.loads(LESSONS[0].read_text(encoding="utf-8"))
    chinese, _ = i18n.chinese_notebook(LESSONS[0])
    assert code_differences(english, chinese) == []
    code = next(i for i, c in enumerate(chinese["cells"]) if c["cell_type"] == "code" and c.get("outputs"))
    for change in ("source", "outputs"):
        broken = copy.deepcopy(chinese)
        broken["cells"][code][change] = broken["cells"][code][change][:-1] or ["x"]
        assert code_differences(english, broken), change


FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[^\n]*\n.*?^\1\2[ \t]*$", re.M | re.S)


def code_blocks(markdown: str) -> list[str]:
    return [m.group(0) for m in FENCE.finditer(markdown)]


def translated_pages(current_only: bool = True) -> list[Path]:
    """Pages with a translation; by default only current ones (a stale one is reported by the sync test)."""
    states = ("current",) if current_only else ("current", "stale")
    return [p for p in PAGES if i18n.page_state(p) in states]


def test_chinese_pages_show_the_english_code_blocks():
    """Byte for byte, in order, `--8<--` lines and titles included: code is never translated."""
    differ, blocks = [], 0
    for page in translated_pages():
        en = code_blocks(page.read_text(encoding="utf-8"))
        zh = code_blocks(i18n.translated_body(i18n.zh_page(page)))
        blocks += len(en)
        if en != zh:
            first = next(
                (i for i, (a, b) in enumerate(zip(en, zh, strict=False)) if a != b), min(len(en), len(zh))
            )
            differ.append(
                f"{page.relative_to(ROOT)}: {len(en)} blocks vs {len(zh)}, first difference #{first + 1}"
            )
    print(f"{blocks} code blocks on {len(translated_pages())} translated pages compared")
    assert not differ, "\n".join(differ)


def test_code_block_comparison_sees_a_changed_block():
    text = "# T\n\n```python\nx = 1\n```\n\n    ```bash\n    make\n    ```\n"
    assert len(code_blocks(text)) == 2
    assert code_blocks(text) != code_blocks(text.replace("x = 1", "x = 2"))


# ----------------------------------------------------------------------------- terminology
GLOSSARY = i18n.load_glossary()
EXCEPTIONS = {(e["where"], e["term"]) for e in (i18n.yaml.safe_load(i18n.GLOSSARY.read_text("utf-8")) or {})
              .get("exceptions") or []}  # fmt: skip
HAN = re.compile(r"[\u4e00-\u9fff]")


def prose(markdown: str) -> str:
    """What a reader reads: no code blocks, inline code, link targets, HTML tags, front matter or comments."""
    text = re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.S)
    text = FENCE.sub(" ", text)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>\n]+>", " ", text)
    return re.sub(r"\{\{[^}]*\}\}", " ", text)


def english_pattern(term: str, entry: dict) -> re.Pattern:
    """Whole word, any case, British or American (-ise/-ize), plural; plus the entry's own forms."""
    base = re.escape(term).replace("is", "i[sz]").replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]?")
    forms = [base + "(?:s|es)?", *entry.get("en", [])]
    return re.compile(r"(?<![\w-])(?:" + "|".join(forms) + r")(?![\w-])", re.I)


PATTERNS = {term: english_pattern(term, entry) for term, entry in GLOSSARY.items()}


def missing_terms(english: str, chinese: str) -> list[str]:
    english, chinese = prose(english), prose(chinese)
    missing = []
    for term, entry in GLOSSARY.items():
        if not PATTERNS[term].search(english):
            continue
        forms = [entry["zh"], *entry.get("accept", [])]
        forms += [re.sub(r"（.*?）", "", f) for f in forms]
        if not any(f and f in chinese for f in forms):
            missing.append(f"{term} -> {entry['zh']}")
    return missing


def translated_texts():
    """(where, English, Chinese) for every translated page and lesson cell."""
    for page in translated_pages():
        yield (
            page.relative_to(ROOT).as_posix(),
            page.read_text("utf-8"),
            i18n.translated_body(i18n.zh_page(page)),
        )
    for nb in LESSONS:
        done = i18n.load_lesson_translation(nb)
        for cell in i18n.markdown_cells(nb):
            entry = done.get(cell["id"])
            if entry and not entry.get("todo") and entry.get("zh"):
                yield f"lessons/{nb.name}#{cell['id']}", cell["source"], entry["zh"]


def test_glossary_terms_are_used_where_their_english_is():
    problems, checked, uses = [], 0, 0
    for where, english, chinese in translated_texts():
        if not HAN.search(chinese):
            continue  # a cell with no prose (only a figure, a formula): nothing to translate
        checked += 1
        uses += sum(bool(pattern.search(prose(english))) for pattern in PATTERNS.values())
        for miss in missing_terms(english, chinese):
            if (where, miss.split(" -> ")[0]) not in EXCEPTIONS:
                problems.append(f"{where}: {miss}")
    print(
        f"{len(GLOSSARY)} glossary terms, {uses} (term, page or cell) uses checked in {checked} translations"
    )
    hint = "use the glossary's term, or add an exception with its reason to translations/zh/glossary.yml"
    assert not problems, f"{len(problems)} places ({hint}):\n" + "\n".join(problems)


def test_glossary_check_finds_a_wrong_term_and_spares_code():
    assert missing_terms("The tensor arena is sized.", "张量内存池的大小。") == []
    assert missing_terms("The tensor arena is sized.", "张量竞技场的大小。") == ["tensor arena -> 张量内存池"]
    assert missing_terms("Quantization and QUANTISED weights.", "量化后的权重。") == []
    assert missing_terms("Call `calibrate(model)`.", "调用 `calibrate(model)`。") == []
    assert missing_terms("```python\nscale = 0.1\n```\n", "```python\nscale = 0.1\n```\n") == []
    assert "per-channel -> 逐通道" in missing_terms("Per channel scales.", "每个通道的缩放因子。")


def test_glossary_is_well_formed_and_has_the_issue_terms():
    required = {
        "quantisation": "量化",
        "calibration set": "校准集",
        "tensor arena": "张量内存池",
        "re-parameterisation": "重参数化",
        "op resolver": "算子解析器",
        "QAT": "量化感知训练",
    }
    for term, zh in required.items():
        assert GLOSSARY[term]["zh"] == zh, term
    for term, entry in GLOSSARY.items():
        assert entry.get("zh"), f"{term}: no Chinese term"
        assert set(entry) <= {"zh", "en", "accept"}, (
            f"{term}: unknown keys {set(entry) - {'zh', 'en', 'accept'}}"
        )
    print(f"{len(GLOSSARY)} terms")


def test_chinese_search_segmentation_is_installed():
    """material's search only cuts Chinese into words when jieba is importable at build time."""
    import jieba

    from tools.docsite import i18n_site

    i18n_site.load_search_words()
    for word in ("张量内存池", "重参数化", "算子解析器", "量化感知训练"):
        assert word in jieba.lcut(f"先确定{word}的大小"), (word, jieba.lcut(f"先确定{word}的大小"))


MARKER = re.compile(r"\{\{ \w+ \}\}")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def structure(markdown: str) -> dict:
    """What a translation keeps: headings by level, markers, link targets, admonitions, front matter."""
    text = FENCE.sub("", re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.S))
    return {
        "heading levels": [len(m) for m in re.findall(r"^(#{1,6}) ", text, re.M)],
        "{{ markers }}": MARKER.findall(text),
        "link targets": sorted(LINK_TARGET.findall(text)),
        "admonitions": re.findall(r"^\s*(?:!!!|\?\?\?\+?) ?(\w+)", text, re.M),
        "front matter": re.match(r"\A---\n.*?\n---\n", markdown, re.S) and markdown.split("\n---\n")[0],
    }


def test_chinese_pages_keep_the_english_structure():
    differ = []
    for page in translated_pages():
        en, zh = structure(page.read_text("utf-8")), structure(i18n.translated_body(i18n.zh_page(page)))
        differ += [f"{page.relative_to(ROOT)}: {key} differ" for key in en if en[key] != zh[key]]
    print(
        f"headings, markers, links, admonitions and front matter compared on {len(translated_pages())} pages"
    )
    assert not differ, f"{len(differ)} differences:\n" + "\n".join(differ)


def test_lesson_time_note_keeps_nested_brackets_of_the_machine_name():
    from tools.docsite.i18n_site import times_zh

    note = "about 7 s under nbval (measured 2026-12-01 on 2 CPU cores (Intel(R) Xeon(R) Processor))."
    machine = "2 CPU cores (Intel(R) Xeon(R) Processor)"
    assert times_zh(note) == f"about 7 s under nbval (2026-12-01 在 {machine} 上测得)."
