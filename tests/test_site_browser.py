"""The docs site as a reader uses it: headless Chromium against the built site served on 127.0.0.1.

Debian's chromium is driven by Python playwright (`executable_path`, no downloaded browser). Every test
also checks that the page logged no console error and asked for nothing outside localhost. Screenshots of
three pages go to test-artifacts/ (git-ignored). Locally a missing chromium skips; with CI=true it fails.
"""

import json
import re
from pathlib import Path

import pytest

from tests.conftest import IN_CI, need_tool
from tests.docsite.build import ROOT, built_site, serve

ARTIFACTS = ROOT / "test-artifacts"
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
RECIPES = sorted(p for p in (ROOT / "cookbook" / "recipes").glob("*.md") if p.name != "index.md")
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

    def __init__(self, browser, base_url):
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
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

    def open(self, path=""):
        response = self.page.goto(self.base_url + path)
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        self.page.wait_for_load_state("networkidle")

    def screenshot(self, name):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name))

    def assert_clean(self):
        assert not self.errors, self.errors
        assert not self.outside, f"requests left localhost: {self.outside}"


@pytest.fixture
def reader(browser, base_url):
    r = Reader(browser, base_url)
    yield r
    r.context.close()


def test_home_page_renders(reader):
    reader.open()
    page = reader.page
    assert page.locator("article h1").first.inner_text().rstrip("¶ \n") == "The deployment cookbook"
    picture = page.locator('article img[src$="path.svg"]')
    picture.scroll_into_view_if_needed()
    assert picture.evaluate("img => img.complete && img.naturalWidth > 0"), "the path picture did not load"
    assert page.locator("article table").last.is_visible()  # the tested-with table
    reader.screenshot("home.png")
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
    reader.screenshot("lesson.png")
    reader.assert_clean()
