"""The built book checked in a real browser (``make test-browser``): headless Chromium, driven by
Playwright, opens every page of ``_build/html`` from the file system and checks what a reader would
notice: mathematics rendered without errors, every image loaded, every internal link and anchor
resolving, the exercise and solution dropdowns opening, no request to another host, and no
JavaScript error. It saves a screenshot of the top of each chapter and appendix page under
``_build/screenshots/``.

The browser is the system's Chromium (Debian's ``chromium`` package; ``BROWSER_PATH`` overrides
the path); Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))  # BOOK_HTML: check another build
SCREENSHOTS = ROOT / "_build" / "screenshots"
BROWSER = os.environ.get("BROWSER_PATH", "/usr/bin/chromium")
# Chromium flags for a closed network and no profile: no background connections, no first-run work.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
PAGES = sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


class _Links(HTMLParser):
    """The ids and the link targets (href, src) of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(values[key])
        if tag == "a" and values.get("href"):
            self.targets.append(values["href"])
        if tag in ("img", "script") and values.get("src"):
            self.targets.append(values["src"])
        if tag == "link" and values.get("href") and "stylesheet" in (values.get("rel") or ""):
            self.targets.append(values["href"])


@lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _relative(page: Path) -> str:
    return page.relative_to(HTML).as_posix()


@pytest.fixture(scope="session")
def browser():
    if not PAGES:
        pytest.fail(f"no built book in {HTML}: run `make book` first")
    if not Path(BROWSER).exists():
        pytest.fail(f"no browser at {BROWSER}: install Debian's chromium package (`make test-browser` does) "
                    "or set BROWSER_PATH")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=BROWSER, args=ARGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("page_path", PAGES, ids=_relative)
def test_internal_links_and_anchors_resolve(page_path: Path) -> None:
    broken = []
    for target in _parse(page_path).targets:
        parts = urlsplit(target)
        if parts.scheme or target.startswith("//"):
            continue  # external links are allowed in the text; the page must not *load* them (below)
        file = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
        if not file.exists():
            broken.append(f"{target} (no file {file.relative_to(ROOT) if ROOT in file.parents else file})")
        elif parts.fragment and file.suffix == ".html" and unquote(parts.fragment) not in _parse(file).ids:
            broken.append(f"{target} (no anchor #{parts.fragment} in {file.name})")
    assert not broken, f"{_relative(page_path)}: broken links: {broken}"


@pytest.mark.parametrize("page_path", PAGES, ids=_relative)
def test_page_renders_in_the_browser(browser, page_path: Path) -> None:
    html = page_path.read_text(encoding="utf-8")
    redirect = re.search(r'http-equiv="refresh" content="\d+; url=([^"]+)"', html, re.IGNORECASE)
    if redirect:  # a redirect page (index.html): its target must exist; the target is checked on its own
        assert (page_path.parent / redirect.group(1)).exists(), f"{_relative(page_path)} redirects to nothing"
        return
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, remote = [], []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: remote.append(request.url)
            if urlsplit(request.url).scheme not in LOCAL_SCHEMES else None)
    page.goto(page_path.as_uri(), wait_until="load")
    if 'class="math' in html:  # MathJax typesets after load: wait for it, then look for its error marks
        try:
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        except Exception:  # Playwright's TimeoutError
            pytest.fail(f"{_relative(page_path)}: MathJax did not load within 30 s (is sphinx-mathjax-offline on?)")
        page.evaluate("MathJax.startup.promise")
        assert page.locator("mjx-container").count() > 0, "the page has mathematics but MathJax rendered none"
        assert page.locator("mjx-merror").count() == 0, "MathJax reported an error in a formula"
    unloaded = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                             ".map(i => i.getAttribute('src'))")
    assert not unloaded, f"images that did not load: {unloaded}"
    if "chapters" in page_path.relative_to(HTML).parts:  # a chapter or appendix page: its top, as rendered
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{page_path.stem}.png"))

    dropdowns = page.locator("div.admonition.dropdown")
    for i in range(dropdowns.count()):
        dropdown = dropdowns.nth(i)
        assert "toggle-hidden" in (dropdown.get_attribute("class") or ""), f"dropdown {i} is open before a click"
        dropdown.locator("button.toggle-button").first.click()
        page.wait_for_function("el => !el.classList.contains('toggle-hidden')", arg=dropdown.element_handle())
        assert dropdown.locator(":scope > :not(.admonition-title)").first.is_visible(), f"dropdown {i} shows nothing"
    hidden_cells = page.locator("details.hide")
    for i in range(min(hidden_cells.count(), 3)):  # "show code" toggles of hidden cells
        cell = hidden_cells.nth(i)
        cell.locator("summary").first.click()
        assert cell.evaluate("el => el.open"), f"hidden cell {i} did not open"

    page.close()
    assert not remote, f"requests to other hosts: {remote[:5]}"
    assert not errors, f"JavaScript errors: {errors[:5]}"
