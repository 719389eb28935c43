"""The app in a real browser (Debian's Chromium through Playwright): example → Run → maps, plots, scrubbing.

Screenshots land in artifacts/ (kept by CI) so a person can check the layout.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from tests.browser_check import browser_required, decide, missing_browser_parts

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning"),
]


@pytest.fixture(scope="module")
def browser_available() -> None:
    """Skip without Chromium or Playwright, or fail where CI requires the browser test to run."""
    decision = decide(missing_browser_parts(CHROMIUM), browser_required(os.environ))
    if decision.action == "fail":
        pytest.fail(decision.message, pytrace=False)
    if decision.action == "skip":
        pytest.skip(decision.message)


@pytest.fixture(scope="module")
def url(browser_available):
    import app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, local_url, _ = app.launch(app.demo, prevent_thread_lock=True, server_port=port, quiet=True)
    yield local_url
    app.demo.close()


@pytest.fixture(scope="module")
def page(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost).*"), lambda route: route.abort())
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#run-btn").wait_for(timeout=60_000)
        yield page
        browser.close()


def test_example_run_maps_plots_and_scrubbing(page):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    expect(page.locator("#estimate")).to_contain_text("Estimated run time", timeout=60_000)
    page.locator("#examples .thumbnail-item").first.click()
    expect(page.locator("#predictions")).to_contain_text("%", timeout=60_000)
    page.locator("#run-btn").click()

    maps = page.locator("#maps")
    expect(maps.get_by_label("Thumbnail 2 of 2")).to_be_visible(timeout=120_000)
    expect(maps).to_contain_text("MA-GIG")
    expect(maps).to_contain_text("GIG ·")
    expect(page.locator("#confidence-plot img")).to_be_visible(timeout=60_000)
    expect(page.locator("#distance-plot img")).to_be_visible(timeout=60_000)
    expect(page.locator("#metrics")).to_contain_text("DiffID")
    expect(page.locator("#downloads")).to_contain_text(re.compile(r"attributions\s*\.npz"), timeout=60_000)
    expect(page.locator("#frames")).to_contain_text(re.compile(r"MA-GIG · t=0\.[45]\d"))
    page.screenshot(path=str(ARTIFACTS / "app_after_run.png"))

    before = page.locator("#frames img").first.get_attribute("src")
    slider = page.locator("#position input[type=range]")
    expect(slider).to_be_enabled()
    slider.fill("0.9")
    expect(page.locator("#frames")).to_contain_text(re.compile(r"MA-GIG · t=0\.(8[5-9]|9\d)"), timeout=30_000)
    page.wait_for_function("(s) => document.querySelector('#frames img')?.src !== s", arg=before)
    page.screenshot(path=str(ARTIFACTS / "app_scrubbed.png"))
    page.screenshot(path=str(ARTIFACTS / "app_full_page.png"), full_page=True)

    # another image clears the results; coming back to the first example replays it from the cache
    page.locator("#examples .thumbnail-item").nth(1).click()
    expect(page.locator("#maps img")).to_have_count(0, timeout=30_000)
    page.locator("#examples .thumbnail-item").first.click()
    expect(page.locator("#status")).to_contain_text("Replayed from the cache", timeout=30_000)
    expect(maps.get_by_label("Thumbnail 2 of 2")).to_be_visible()


def test_bad_upload_shows_an_error_toast_and_the_page_keeps_working(page, tmp_path):
    from playwright.sync_api import expect

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not really a png")
    page.get_by_role("button", name="Remove Image").click()
    page.locator("#input-image input[type=file]").set_input_files(str(bad))
    expect(page.locator("[data-testid='toast-body']").first).to_contain_text("not an image", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app_bad_upload.png"))
