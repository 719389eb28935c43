"""Two visitors in two browsers: one waits behind the other's long run, then the first closes the tab.

Catches a waiting visitor left without a place in the queue or an expected wait, and a run that goes on
after its tab was closed (the waiting visitor would sit behind it for the rest of its path).
"""

from __future__ import annotations

import re
import socket

import pytest

from magig_core.explorer.settings import RunSettings
from tests.browser_check import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, require_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning"),
]


@pytest.fixture(scope="module")
def served():
    """The app in this process (its explorer is inspected), or a skip/fail as for the other browser test."""
    require_browser()
    import app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, url, _ = app.launch(app.demo, prevent_thread_lock=True, server_port=port, quiet=True)
    yield app, url
    app.demo.close()


def open_visitor(browser, url: str, example: int, steps: int, size: str | None = None):
    """A fresh session with a demo scene picked (it selects the demo models), the steps and size set."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost).*"), lambda route: route.abort())
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#run-btn").wait_for(timeout=60_000)
    page.locator("#examples .thumbnail-item").nth(example).click()
    expect(page.locator("#predictions")).to_contain_text("%", timeout=60_000)
    steps_box = page.get_by_label("Steps (path points)").first
    steps_box.fill(str(steps))
    steps_box.press("Enter")
    if size is not None:
        page.get_by_role("radio", name=size, exact=True).check()
    expect(page.locator("#estimate")).to_contain_text("Estimated run time", timeout=60_000)
    return page


def seconds_per_step(app, image: str, size: int, steps: int = 40) -> float:
    """MA-GIG's seconds per path step on this machine, now (the same explorer the server uses)."""
    settings = RunSettings("demo-shapes", "demo-shapes", ("ma-gig",), steps=steps, size=size)
    return list(app.EXPLORER.run(image, settings))[-1].results[0].seconds / steps


def test_a_waiting_visitor_sees_the_queue_and_runs_as_soon_as_the_other_tab_closes(served):
    from playwright.sync_api import expect, sync_playwright

    app, url = served
    scenes = [i for i, e in enumerate(app.EXPLORER.examples) if e.classifier == "demo-shapes"]
    step = seconds_per_step(app, app.EXPLORER.examples[scenes[2]].path, 128)
    bound = 20 * step + 3.0  # a few path steps, plus the page noticing that its run started
    assert 300 * step > 3 * bound, "the first visitor's run is too short here to tell a stop from a finish"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        first = open_visitor(browser, url, scenes[0], 400, size="128")  # 128 px: each step costs 4× more
        second = open_visitor(browser, url, scenes[1], 8)
        first.locator("#run-btn").click()
        expect(first.locator("#status")).to_contain_text("Running 1 of 2", timeout=60_000)
        second.locator("#run-btn").click()
        status = second.locator("#status")
        expect(status).to_contain_text("queue: 1/1", timeout=30_000)
        expect(status).to_contain_text(re.compile(r"1 run ahead of yours, expected wait about \d+"))
        ARTIFACTS.mkdir(exist_ok=True)
        second.screenshot(path=str(ARTIFACTS / "app_waiting_in_queue.png"))

        first.context.close()  # the first visitor leaves with at least 300 MA-GIG steps to go
        expect(status).to_contain_text("Explaining", timeout=bound * 1000)  # the second run has started
        expect(second.locator("#maps").get_by_label("Thumbnail 2 of 2")).to_be_visible(timeout=60_000)
        browser.close()
