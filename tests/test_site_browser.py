"""The docs site as a reader uses it: headless Chromium against the built site served on 127.0.0.1.

Debian's chromium is driven by Python playwright (`executable_path`, no downloaded browser). Every test
also checks that the page logged no console error and asked for nothing outside localhost. Screenshots of
the home page and lessons 11 and 34, at a desktop width (1366 px) and a phone width (390 px), go to
build/site-screenshots/ (git-ignored) for a reviewer. Locally a missing chromium skips; with CI=true it fails.
"""

import json
import re
from pathlib import Path

import pytest

from tests.conftest import IN_CI, need_tool
from tests.docsite.build import ROOT, built_site, serve

ARTIFACTS = ROOT / "build" / "site-screenshots"
WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
RECIPES = sorted(  # English recipes (x.zh.md is the Chinese edition's, tested by tests/test_i18n.py)
    p for p in (ROOT / "cookbook" / "recipes").glob("*.md") if p.name != "index.md" and ".zh." not in p.name
)
DYNAMIC_BATCH = [p for p in RECIPES if "dynamic-batch" in p.stem]


def has_png_output(nb: Path) -> bool:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return any("image/png" in out.get("data", {}) for c in cells for out in c.get("outputs", []))


@pytest.fixture(scope="module")
def base_url():
    build = built_site()
    assert build.returncode == 0, build.log[-5000:]
    with serve(build.site) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    chromium = need_tool("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        message = "Python playwright is not installed (it is in pyproject.toml: `make` installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


class Reader:
    """A browser tab that records console errors, page errors and requests that leave localhost."""

    def __init__(self, browser, base_url, size=(1280, 900), scheme="light"):
        self.base_url = base_url
        self.context = browser.new_context(
            viewport={"width": size[0], "height": size[1]}, color_scheme=scheme
        )
        self.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url.rstrip("/"))
        self.errors, self.outside = [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base_url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, path="", wait="networkidle"):
        response = self.page.goto(self.base_url + path, wait_until=wait)
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"

    def screenshot(self, name, full_page=False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)

    def overflow(self) -> int:
        """How many pixels the page body is wider than the window (0: no sideways scrolling)."""
        return self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )

    def assert_clean(self):
        assert not self.errors, self.errors
        assert not self.outside, f"requests left localhost: {self.outside}"


@pytest.fixture
def reader(browser, base_url):
    r = Reader(browser, base_url)
    yield r
    r.context.close()


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def sized_reader(request, browser, base_url):
    r = Reader(browser, base_url, WIDTHS[request.param])
    r.width_name = request.param
    yield r
    r.context.close()


def test_home_page_renders_and_its_path_picture_links_to_lessons(sized_reader):
    reader = sized_reader
    reader.open()
    page = reader.page
    assert page.locator("article h1").first.inner_text().rstrip("¶ \n") == "The deployment cookbook"
    assert page.locator("article table").last.is_visible()  # the tested-with table
    reader.screenshot(f"home-{reader.width_name}.png", full_page=True)
    boxes = page.locator(".path-picture svg a")
    visible = [boxes.nth(i) for i in range(boxes.count()) if boxes.nth(i).is_visible()]
    assert len(visible) >= 6, f"only {len(visible)} linked boxes visible"
    text_height = page.locator(".path-picture svg:visible text").first.evaluate(
        "t => t.getBoundingClientRect().height"
    )
    assert text_height >= 11, f"path picture text is {text_height:.1f} px high: not legible"
    hrefs = [box.get_attribute("href") for box in visible]
    visible[-1].click()  # the last box: Cortex-M4, lesson 34 when it exists
    page.wait_for_url(re.compile(re.escape(hrefs[-1].strip("./")) + "/?$"))
    assert page.locator("article h1").count() == 1
    assert reader.overflow() == 0
    print(f"{reader.width_name}: {len(visible)} boxes, text {text_height:.0f} px high")
    reader.assert_clean()


def click_through(reader, tab: str, targets: list[str]):
    """From the home page, open a top tab, then click each target page in the sidebar, one after another."""
    reader.open()
    page = reader.page
    page.locator("a.md-tabs__link", has_text=tab).click()
    page.wait_for_load_state()
    for target in targets:
        link = page.locator(f'nav.md-nav--primary a.md-nav__link[href$="{target}/"]').first
        assert link.count() == 1, f"no navigation link to {target} on {page.url}"
        link.click()
        page.wait_for_url(re.compile(re.escape(target) + "/$"))
        assert page.locator("article h1").count() >= 1, f"{target} has no title"


@pytest.mark.skipif(not LESSONS, reason="no lessons yet")
def test_navigation_reaches_every_lesson(reader):
    click_through(reader, "Lessons", [nb.stem for nb in LESSONS])
    reader.assert_clean()


@pytest.mark.skipif(not RECIPES, reason="no recipes yet")
def test_navigation_reaches_every_recipe(reader):
    click_through(reader, "Cookbook", [md.stem for md in RECIPES])
    reader.assert_clean()


@pytest.mark.skipif(len(DYNAMIC_BATCH) != 1, reason="needs exactly one recipes/*dynamic-batch*.md")
def test_search_finds_the_dynamic_batch_recipe(reader):
    reader.open()
    page = reader.page
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("dynamic", delay=30)  # material searches on key events, as a reader types
    hit = page.locator(f'.md-search-result__item a[href*="recipes/{DYNAMIC_BATCH[0].stem}/"]').first
    hit.wait_for(state="visible")
    hit.click()
    page.wait_for_url(re.compile(f"recipes/{DYNAMIC_BATCH[0].stem}/"))
    reader.assert_clean()


@pytest.mark.skipif(len(DYNAMIC_BATCH) != 1, reason="needs exactly one recipes/*dynamic-batch*.md")
def test_code_block_copy_button_copies_the_code(reader):
    reader.open(f"recipes/{DYNAMIC_BATCH[0].stem}/")
    page = reader.page
    copy = 'button.md-clipboard, button.md-code__button[data-md-type="copy"]'  # material 9.x, 9.8
    block = page.locator("article div.highlight").filter(has=page.locator(copy)).first
    code = block.locator("pre > code").inner_text()
    block.hover()
    block.locator(copy).first.click()
    page.locator(".md-dialog", has_text="Copied").wait_for(state="visible")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == code.strip() and len(copied) > 40
    nav = block.locator(copy).first.bounding_box()
    first_line = block.locator("pre > code").first.bounding_box()
    code_top = first_line["y"] + float(
        block.locator("pre > code").first.evaluate("c => getComputedStyle(c).paddingTop")[:-2]
    )
    assert nav["y"] + nav["height"] <= code_top + 1, "the copy button covers the first line of code"
    reader.screenshot("recipe.png")
    reader.assert_clean()


def test_lesson_page_shows_its_output_image(reader):
    with_images = [nb for nb in LESSONS if has_png_output(nb)]
    if not with_images:
        pytest.skip("no lesson has an image output yet")
    nb = with_images[0]
    reader.open(f"lessons/{nb.stem}/")
    page = reader.page
    assert page.locator(f'a[href="{nb.name}"][download]').count() == 1, "no download link"
    image = page.locator(".jp-OutputArea-output img").first
    image.scroll_into_view_if_needed()
    assert image.evaluate("img => img.complete && img.naturalWidth > 50"), "the output image did not render"
    image.click()
    page.locator(".zoom-overlay img").wait_for(state="visible")
    page.keyboard.press("Escape")
    assert page.locator(".zoom-overlay").count() == 0
    assert image.get_attribute("alt"), "figure without alt text"
    reader.screenshot("lesson.png")
    reader.assert_clean()


def test_no_page_scrolls_sideways(browser, base_url):
    """Every lesson and recipe at 1366 and 390 px: wide code, outputs and tables scroll in their own box."""
    pages = [f"lessons/{nb.stem}/" for nb in LESSONS] + [f"recipes/{md.stem}/" for md in RECIPES]
    wide = []
    for name, size in WIDTHS.items():
        reader = Reader(browser, base_url, size)
        for path in pages:
            reader.open(path, wait="load")
            if reader.overflow() > 0:
                wide.append(f"{name} {path}: {reader.overflow()} px")
        reader.assert_clean()
        reader.context.close()
    print(f"{len(pages)} pages at {len(WIDTHS)} widths")
    assert not wide, wide


WITH_ERRORS = [nb for nb in LESSONS if '"output_type": "error"' in nb.read_text(encoding="utf-8")]


@pytest.mark.skipif(not WITH_ERRORS, reason="no lesson has an expected-error cell")
def test_expected_error_line_is_visible_without_expanding(sized_reader):
    reader = sized_reader
    nb = next((n for n in WITH_ERRORS if n.name.startswith("11_")), WITH_ERRORS[0])
    reader.open(f"lessons/{nb.stem}/")
    page = reader.page
    box = page.locator(".nb-error").first
    box.scroll_into_view_if_needed()
    for part in (".nb-error__where", ".nb-error__line", ".nb-error__message"):
        assert box.locator(part).is_visible(), f"{part} is not visible"
        inside = box.locator(part).evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        assert inside, f"{part} is cut off at {reader.width_name} width"
    assert not box.locator("details > div").is_visible(), "the full traceback is not folded"
    height = page.evaluate("document.documentElement.scrollHeight")
    print(f"{nb.name} at {reader.width_name} width: {height} px tall")
    reader.screenshot(f"lesson-11-{reader.width_name}.png")
    box.locator("details > summary").click()
    assert box.locator("details pre").first.is_visible()
    assert reader.overflow() == 0
    lesson_34 = [n for n in LESSONS if n.name.startswith("34_")]
    if lesson_34:
        reader.open(f"lessons/{lesson_34[0].stem}/")
        reader.screenshot(f"lesson-34-{reader.width_name}.png")
    reader.assert_clean()


def test_dark_mode_toggles_and_reaches_notebook_cells(reader):
    reader.open(f"lessons/{LESSONS[0].stem}/")
    page = reader.page
    body = page.locator("body")
    cell = page.locator(".jp-CodeCell .highlight-ipynb pre").first

    def background():
        return cell.evaluate("e => getComputedStyle(e).backgroundColor")

    assert body.get_attribute("data-md-color-scheme") == "default"
    light = background()
    page.locator('label.md-header__button[for^="__palette"]:visible').first.click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
    dark = background()
    assert dark != light, f"notebook cells stay {light} in dark mode"
    reader.screenshot("lesson-dark.png")
    page.locator('label.md-header__button[for^="__palette"]:visible').first.click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'default'")
    reader.assert_clean()


def search_results(reader, query: str, start: str = "") -> tuple[str, set[str]]:
    reader.open(start)
    page = reader.page
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially(query, delay=20)
    search.press("End")  # a key event: characters off the keyboard (Chinese) are inserted without one
    meta = page.locator(".md-search-result__meta")
    page.wait_for_function(
        "q => document.querySelector('.md-search-result__meta')?.textContent.match(/\\d+ (matching|个)/)",
        arg=query,
    )
    links = page.locator(".md-search-result__item > a.md-search-result__link")
    shown = -1
    while links.count() != shown:  # material adds results as the list scrolls: scroll to the end
        shown = links.count()
        page.locator(".md-search__scrollwrap").evaluate("e => { e.scrollTop = e.scrollHeight; }")
        page.wait_for_timeout(300)
    pages = {re.split(r"[#?]", links.nth(i).get_attribute("href"))[0] for i in range(links.count())}
    return meta.inner_text(), pages


def test_search_finds_the_same_pages_for_both_spellings(reader):
    """Same number of matching sections; which pages are listed first may differ (ranking counts words).

    tests/test_site.py checks on the index itself that both spellings are in exactly the same sections.
    """
    british = search_results(reader, "quantisation")
    american = search_results(reader, "quantization")
    assert british[0] == american[0], f"quantisation: {british[0]}, quantization: {american[0]}"
    assert len(british[1]) >= 5 and len(american[1]) >= 5, (british, american)
    shared = british[1] & american[1]
    assert len(shared) >= 0.7 * min(len(british[1]), len(american[1])), (british, american)
    print(f"quantisation / quantization: {british[0]}; {len(shared)} of the pages listed first are shared")
    reader.assert_clean()


# ----------------------------------------------------------------------------- the Chinese edition (issue 17)
TENSOR_ARENA = [p for p in RECIPES if p.stem == "size-the-tensor-arena"]


@pytest.mark.skipif(not TENSOR_ARENA, reason="needs recipes/size-the-tensor-arena.md")
def test_chinese_lesson_and_recipe_pages_read_well(sized_reader):
    reader = sized_reader
    nb = next((n for n in LESSONS if n.name.startswith("30_")), LESSONS[0])
    for path, name in ((f"zh/lessons/{nb.stem}/", "lesson"), ("zh/recipes/size-the-tensor-arena/", "recipe")):
        reader.open(path)
        page = reader.page
        assert page.locator("html").get_attribute("lang") == "zh"
        assert page.locator("article h1").first.is_visible()
        assert reader.overflow() == 0, f"{path} scrolls sideways at {reader.width_name} width"
        reader.screenshot(f"zh-{name}-{reader.width_name}.png")
    reader.assert_clean()


@pytest.mark.skipif(len(DYNAMIC_BATCH) != 1, reason="needs exactly one recipes/*dynamic-batch*.md")
def test_language_switcher_leads_to_the_same_page_both_ways(reader):
    stem = DYNAMIC_BATCH[0].stem
    reader.open(f"recipes/{stem}/")
    page = reader.page
    for lang, url in (("zh", f"zh/recipes/{stem}/"), ("en", f"recipes/{stem}/")):
        page.locator(".md-select > button.md-header__button").hover()
        page.locator(f'a.md-select__link[hreflang="{lang}"]').click()
        page.wait_for_url(reader.base_url + url)
        assert page.locator("html").get_attribute("lang") == lang
    reader.assert_clean()


@pytest.mark.skipif(not TENSOR_ARENA, reason="needs recipes/size-the-tensor-arena.md")
def test_chinese_search_finds_chinese_pages(reader):
    """Typed in Chinese on a Chinese page: jieba cut the index into words, so a whole term is found."""
    meta, pages = search_results(reader, "张量内存池", start="zh/")
    assert any(p.endswith("zh/recipes/size-the-tensor-arena/") for p in pages), (meta, pages)
    meta, pages = search_results(reader, "量化", start="zh/")
    assert sum("/zh/" in p for p in pages) >= 5, (meta, pages)
    print(f"量化: {meta}; {sum('/zh/' in p for p in pages)} Chinese pages listed first")
    reader.assert_clean()
