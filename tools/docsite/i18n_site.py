"""The Chinese edition (issue 17): every page again under zh/, in the same `mkdocs build` as the English.

Why a hook and not mkdocs-static-i18n: tools/mkdocs_hooks.py builds the navigation itself and publishes
lessons from outside docs_dir; one build with both languages keeps those in one place and builds once.

- a page `x.md` becomes `zh/x.md`: its translation `x.zh.md` (without the `translation of` line), or the
  English with a visible "not yet translated" note; a stale translation is shown with a note;
- a lesson becomes `zh/lessons/<name>.ipynb`, made by tools/i18n.py's chinese_notebook from the executed
  English notebook (prose by cell id; code and outputs identical; never run) into build/i18n/ (ignored);
- the Chinese pages get their own navigation (same order as the English, Chinese titles and sections), the
  theme's Chinese labels, and a language switcher to the same page in the other language
  (overrides/partials/alternate.html);
- search: jieba segments Chinese when the index is built (material's search plugin does so when jieba is
  installed); the glossary's Chinese terms are added to jieba's dictionary so "张量内存池" stays one word.
"""

import json
import logging
import os
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.nav import get_navigation
from mkdocs.utils import get_relative_url

from tools import i18n

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
GENERATED = ROOT / "build" / "i18n"  # the Chinese notebooks, remade by every build (git-ignored)
ZH = "zh/"
NAMES = {"en": "English", "zh": "中文"}

# Words the hooks write into pages, in Chinese.
SECTIONS = {
    "Lessons": "课程",
    "Cookbook": "菜谱",
    "Reference": "参考",
    "Snippet reference": "代码片段参考",
    "Start here": "从这里开始",
    "Everyday PyTorch": "日常 PyTorch",
    "ONNX": "ONNX",
    "Deployment-friendly detection": "易于部署的检测模型",
    "Microcontrollers": "微控制器",
    "More lessons": "更多课程",
    "Export to ONNX": "导出到 ONNX",
    "Inspect and edit ONNX": "查看和编辑 ONNX",
    "Detection models": "检测模型",
    "Quantisation": "量化",
}
MISSING_PAGE_NOTE = (
    '!!! warning "尚未翻译"\n\n    本页还没有中文译文，下面是英文原文。[English]({english})\n\n'
)
STALE_PAGE_NOTE = (
    '!!! warning "译文待更新"\n\n    英文版在翻译之后改过，本页译文可能已过时，'
    "以[英文版]({english})为准。\n\n"
)


def is_zh(page) -> bool:
    return page.file.src_uri.startswith(ZH)


def english_uri(uri: str) -> str:
    return uri.removeprefix(ZH)


# ----------------------------------------------------------------------------- files
def chinese_lesson_file(nb: Path, config) -> File:
    """Write zh/lessons/<name>.ipynb under build/i18n (only when it changed: mkdocs-jupyter caches by it)."""
    notebook, _ = i18n.chinese_notebook(nb)
    remember_lesson(nb, notebook)
    path = GENERATED / ZH / "lessons" / nb.name
    text = json.dumps(notebook, ensure_ascii=False, indent=1) + "\n"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic: another build may be reading it
    return File(
        f"{ZH}lessons/{nb.name}",
        str(GENERATED),
        config["site_dir"],
        config["use_directory_urls"],
        inclusion=InclusionLevel.NOT_IN_NAV,  # in the Chinese navigation, not reported as missing from it
    )


def chinese_page_file(english: File, config) -> File:
    source = Path(english.abs_src_path)
    zh = i18n.zh_page(source)
    state = i18n.page_state(source)
    text = i18n.translated_body(zh) if state != "missing" else source.read_text(encoding="utf-8")
    f = File.generated(config, ZH + english.src_uri, content=text, inclusion=InclusionLevel.NOT_IN_NAV)
    f.abs_src_path = str(zh if state != "missing" else source)  # front matter, git date: the real file
    f.i18n_state = state
    return f


def without_translation_sources(files: Files) -> Files:
    return Files([f for f in files if not f.src_uri.endswith(".zh.md")])


def add_chinese_files(files: Files, config) -> Files:
    """Every English page and lesson again under zh/ (module reference pages stay English only)."""
    kept = list(files)
    chinese = []
    for f in kept:
        if f.src_uri.startswith("reference/snippets/"):
            continue  # module pages are the docstrings: English only, linked from the Chinese index
        if f.src_uri.startswith("lessons/") and f.src_uri.endswith(".ipynb"):
            chinese.append(chinese_lesson_file(LESSONS / Path(f.src_uri).name, config))
        elif f.src_uri.endswith(".md") and f.abs_src_path and not f.generated_by:
            chinese.append(chinese_page_file(f, config))
    return Files(kept + chinese)


# ----------------------------------------------------------------------------- navigation
def chinese_nav_config(nav: list, files: Files) -> list:
    """The English navigation with zh/ pages, Chinese section names and each page's own (Chinese) title."""

    def convert(item):
        if isinstance(item, str):
            return ZH + item if files.get_file_from_path(ZH + item) else None
        ((title, value),) = item.items()
        if isinstance(value, str):  # a page keeps its own title: mkdocs made its Page before this nav
            return convert(value)
        children = [c for c in map(convert, value) if c is not None]
        return {SECTIONS.get(title, title): children} if children else None

    return [c for c in map(convert, nav) if c is not None]


def chinese_navigation(nav_config: list, files: Files, config):
    zh_files = Files([f for f in files if f.src_uri.startswith(ZH)])
    english_nav = config["nav"]
    config["nav"] = chinese_nav_config(nav_config, files)
    try:
        navigation = get_navigation(zh_files, config)
    finally:
        config["nav"] = english_nav
    home = files.get_file_from_path(ZH + "index.md")
    navigation.homepage = home.page if home else None
    return navigation


# ----------------------------------------------------------------------------- pages
def the_other_language(page, files: Files) -> tuple[str, str]:
    """(language, relative link) of the same page in the other language.

    A snippet module's page is English only: its Chinese link is the Chinese snippet reference."""
    uri = page.file.src_uri
    if is_zh(page):
        lang, other = "en", english_uri(uri)
    elif uri.startswith("reference/snippets/"):
        lang, other = "zh", ZH + "reference/snippets.md"
    else:
        lang, other = "zh", ZH + uri
    home = "index.md" if lang == "en" else ZH + "index.md"
    target = files.get_file_from_path(other) or files.get_file_from_path(home)
    return lang, get_relative_url(target.url, page.url)


def page_context(context, page, config, files: Files, zh_nav):
    """Chinese navigation and labels on Chinese pages; the switcher on every page."""
    zh = is_zh(page)
    config.theme["language"] = "zh" if zh else "en"  # pages render one at a time: reset for each
    if zh and zh_nav is not None:
        context["nav"] = zh_nav
    lang, link = the_other_language(page, files)
    here = "zh" if zh else "en"
    context["i18n_alternates"] = [
        {"name": NAMES[here], "link": "./", "lang": here, "current": True},
        {"name": NAMES[lang], "link": link, "lang": lang, "current": False},
    ]
    return context


LINK = re.compile(r"(\]\()([^)\s#]+\.(?:md|ipynb))([#)\s])")


def point_untranslated_links_to_english(markdown: str, page, files: Files) -> str:
    """A Chinese page's link to a page that has no Chinese version (a module page) goes to the English one."""
    base = posixpath.dirname(page.file.src_uri)

    def fix(m):
        if re.match(r"^[a-z]+:", m.group(2)):
            return m.group(0)
        target = posixpath.normpath(posixpath.join(base, m.group(2)))
        if files.get_file_from_path(target) or not files.get_file_from_path(english_uri(target)):
            return m.group(0)
        return m.group(1) + posixpath.relpath(english_uri(target), base) + m.group(3)

    return LINK.sub(fix, markdown)


def note_translation_state(markdown: str, page) -> str:
    """Under the title of a Chinese page that shows the English, or an old translation: say so."""
    state = getattr(page.file, "i18n_state", "current")
    if state == "current":
        return markdown
    english = posixpath.relpath(english_uri(page.file.src_uri), posixpath.dirname(page.file.src_uri))
    note = (MISSING_PAGE_NOTE if state == "missing" else STALE_PAGE_NOTE).format(english=english)
    parts = re.split(r"(^# .*\n)", markdown, maxsplit=1, flags=re.M)
    if len(parts) == 3:  # under the H1, which stays the page's title
        return parts[0] + parts[1] + "\n" + note + parts[2]
    return note + markdown


def load_search_words():
    """jieba keeps the glossary's Chinese terms whole (张量内存池, 重参数化), as a reader types them."""
    try:
        import jieba
    except ImportError:  # the search still works, without Chinese segmentation; tests/test_i18n.py fails
        return
    jieba.setLogLevel(logging.WARNING)  # not its "Building prefix dict" lines in every build log
    for entry in i18n.load_glossary().values():
        word = re.sub(r"（.*?）|\(.*?\)", "", entry["zh"]).strip()
        if re.search(r"[\u4e00-\u9fff]", word):
            jieba.add_word(word, freq=100000)


# ----------------------------------------------------------------------------- words the hooks write
def section(page, title: str) -> str:
    return SECTIONS.get(title, title) if is_zh(page) else title


def times_zh(text: str) -> str:
    """provenance's 'measured <day> by the last test run' / 'measured <day> on <machine>' in Chinese."""
    text = re.sub(r"measured (\S+) by the last test run", r"最近一次测试运行于 \1 测得", text)
    # the machine may hold nested brackets ("2 CPU cores (Intel(R) Xeon(R) Processor)"): keep them whole
    machine = r"((?:[^();]|\((?:[^()]|\([^()]*\))*\))+?)"
    return re.sub(rf"measured (\S+) on {machine}(?=[);]|$)", r"\1 在 \2 上测得", text)


def provenance_zh(facts: str) -> str:
    """provenance.provenance_line in Chinese ('Tested with torch 2.x · last changed in commit ...')."""
    facts = facts.replace("Tested with ", "测试环境：")
    return re.sub(r"last changed in commit (\w+) \(([\d-]+)\)", r"最后修改于提交 \1（\2）", facts)


def lesson_banner(name: str, home: str, time: str, facts: str) -> str:
    """tools/mkdocs_hooks.py's lesson_banner, in Chinese (the download is the Chinese notebook)."""
    import html

    time = times_zh(re.sub(r"about (\d+) s under nbval \((.*)\)", r"在 nbval 下约 \1 秒（\2）", time))
    return (
        '<div class="lesson-meta">'
        f'<p><a class="md-button" href="{name}" download>下载 {name}</a> '
        f"<span>它会导入 <code>snippets/</code>，请在项目里运行，见"
        f'<a href="{home}get-the-code/">获取代码</a>（<code>make lab</code>）。'
        + (f"运行时间{html.escape(time)}。" if time else "")
        + "</span></p>"
        + (f'<p class="lesson-meta__facts">{html.escape(provenance_zh(facts))}。</p>' if facts else "")
        + "</div>\n"
    )


_titles: dict[str, str] = {}  # lesson file name -> the Chinese notebook's title, filled by on_files
_learn: dict[str, str] = {}


def chinese_lesson_title(nb: Path) -> str:
    return _titles.get(nb.name, "")


def learn_line(page, nb: Path) -> str:
    return _learn.get(nb.name, "") if is_zh(page) else ""


def remember_lesson(nb: Path, notebook: dict) -> None:
    from tools.mkdocs_hooks import plain_title

    first = next(("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"), "")
    title = next((plain_title(line[2:]) for line in first.splitlines() if line.startswith("# ")), "")
    _titles[nb.name] = title
    m = re.search(
        r"\*\*(?:你将学到|本课你将学到|你会学到|学习目标)[：:]?\*\*[：:]?\s*(.*?)(?:\n\s*\n|\n\*\*|$)",
        first,
        re.S,
    )
    if m:
        body = m.group(1).strip().removeprefix("- ").split("\n- ")[0]
        _learn[nb.name] = re.split(r"(?<=[；。])", body)[0].strip().rstrip("；;")


def chinese_page_title(src_uri: str) -> str:
    zh = i18n.zh_page(ROOT / "cookbook" / src_uri)
    for line in i18n.translated_body(zh).splitlines():
        if line.startswith("# "):
            from tools.mkdocs_hooks import plain_title

            return plain_title(line[2:])
    return ""


CODE_INPUT = re.compile(r'<div class="jp-CodeMirrorEditor jp-Editor jp-InputArea-editor"')


def exclude_code_from_search(content: str) -> str:
    """A Chinese lesson's code is the English lesson's: leave it out of the search index (half its size)."""
    from tools.docsite.notebook_page import div_end

    out, last = [], 0
    for m in CODE_INPUT.finditer(content):
        if m.start() < last:
            continue
        end = div_end(content, m.start())
        out += [content[last : m.start()], "<nb-noindex data-search-exclude>", content[m.start() : end]]
        out.append("</nb-noindex>")
        last = end
    content = "".join(out) + content[last:]
    # notebook_page.fix_notebook_links writes module links for lessons/x/: zh/lessons/x/ is one level deeper
    return content.replace('href="../../reference/snippets/', 'href="../../../reference/snippets/')


def glossary_table(page) -> str:
    """The glossary page's English-Chinese table, from translations/zh/glossary.yml (which the tests use)."""
    head = "| 英文 | 中文 |" if is_zh(page) else "| English | Chinese |"
    rows = [
        f"| {en} | {entry['zh']} |"
        for en, entry in sorted(i18n.load_glossary().items(), key=lambda t: t[0].lower())
    ]
    return head + "\n|---|---|\n" + "\n".join(rows)


PRE = re.compile(r"<pre\b.*?</pre>", re.S)


def exclude_code_blocks_from_search(content: str) -> str:
    """A Chinese page's code blocks are its English page's: searching code finds that page, once."""
    return PRE.sub(lambda m: f"<nb-noindex data-search-exclude>{m.group(0)}</nb-noindex>", content)


# The captions tools/docsite/recipe_page.py writes on recipe pages
RECIPE_WORDS = {
    'title="Example (run by the tests)"': 'title="示例（由测试运行）"',
    'title="What the example prints (recorded by the tests)"': 'title="示例的输出（由测试记录）"',
    "*The example prints nothing: its checks are `assert`s, and they passed in the tests.*": (
        "*示例不打印任何内容：它的检查都是 `assert`，并且在测试中全部通过。*"
    ),
}


def recipe_words(markdown: str, page) -> str:
    if is_zh(page):
        for english, chinese in RECIPE_WORDS.items():
            markdown = markdown.replace(english, chinese)
    return markdown
