"""The app in a real browser (Debian's Chromium through Playwright): example → Run → maps, plots, scrubbing.

Screenshots land in artifacts/ (kept by CI) so a person can check the layout.
"""

from __future__ import annotations

import re
import socket

import pytest

from tests.browser_check import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, require_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning"),
]


@pytest.fixture(scope="module")
def browser_available() -> None:
    """Skip without Chromium or Playwright, or fail where CI requires the browser test to run."""
    require_browser()


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
    page.locator("#quick-look").click()  # 32 points: the paper's 200 would multiply the test's run time
    expect(page.locator("#steps input[type=number]")).to_have_value("32")
    page.locator("#run-btn").click()

    maps = page.locator("#maps")
    expect(maps.get_by_label("Thumbnail 2 of 2")).to_be_visible(timeout=120_000)
    expect(maps).to_contain_text("MA-GIG")
    expect(maps).to_contain_text("GIG ·")
    expect(page.locator("#accumulation-plot img")).to_be_visible(timeout=60_000)
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


def test_the_maps_form_on_the_page_and_on_the_stage_while_the_paths_are_walked(page):
    """Catches a run that shows nothing until a walk ends: the picture of the maps forming must change at
    least three times during one run, on the page and in the stage view, and go away once the maps are in."""
    from playwright.sync_api import expect

    page.locator("#examples .thumbnail-item").nth(2).click()
    expect(page.locator("#predictions")).to_contain_text("%", timeout=60_000)
    steps = page.locator("#steps input[type=number]")
    steps.fill("72")  # long enough to watch (seconds) and never replayed: the warm-up uses 200, the other tests 32
    steps.press("Tab")
    page.evaluate("""() => {  // every distinct picture of the forming maps, on the page and on the stage
        window.forming = {page: new Set(), stage: new Set()};
        new MutationObserver(() => {
            const shown = document.querySelector('#live-map img');
            if (shown?.src && shown.offsetParent !== null) window.forming.page.add(shown.src);
            const staged = document.querySelector('#stage .stage-live:not([hidden]) img');
            if (staged?.src) window.forming.stage.add(staged.src);
        }).observe(document.documentElement, {subtree: true, childList: true, attributes: true});
    }""")
    page.locator("#run-btn").click()
    expect(page.locator("#live-map img")).to_be_visible(timeout=60_000)
    page.wait_for_function("window.forming.page.size >= 3", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "app_forming.png"))
    page.locator("#stage-open").click()
    expect(page.locator("#stage .stage-live img")).to_be_visible(timeout=30_000)
    expect(page.locator("#stage .stage-live figcaption")).to_contain_text("maps forming")
    page.screenshot(path=str(ARTIFACTS / "talk_stage_forming.png"))
    page.keyboard.press("Escape")
    expect(page.locator("#maps").get_by_label("Thumbnail 2 of 2")).to_be_visible(timeout=180_000)
    expect(page.locator("#live-map img")).to_be_hidden(timeout=30_000)
    assert page.evaluate("window.forming.page.size") >= 3
    assert page.evaluate("window.forming.stage.size") >= 3


def test_bad_upload_shows_an_error_toast_and_the_page_keeps_working(page, tmp_path):
    """Catches a failed upload that leaves the page stuck: after the error toast, an example still runs to maps."""
    from playwright.sync_api import expect

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"not really a png")
    page.get_by_role("button", name="Remove Image").click()
    page.locator("#input-image input[type=file]").set_input_files(str(bad))
    expect(page.locator("[data-testid='toast-body']").first).to_contain_text("not an image", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "app_bad_upload.png"))
    page.locator("#examples .thumbnail-item").nth(1).click()
    expect(page.locator("#predictions")).to_contain_text("%", timeout=60_000)
    page.locator("#quick-look").click()  # 32 points: the paper's 200 would multiply the test's run time
    expect(page.locator("#steps input[type=number]")).to_have_value("32")
    page.locator("#run-btn").click()
    expect(page.locator("#maps").get_by_label("Thumbnail 2 of 2")).to_be_visible(timeout=120_000)
    expect(page.locator("#status")).to_contain_text("Explaining")


# Talk mode at a projector's 1280×720 --------------------------------------------------------------

@pytest.fixture(scope="module")
def projector(page):
    """A second tab of the same browser at a projector's size (one Playwright per thread)."""
    tab = page.context.browser.new_page(viewport={"width": 1280, "height": 720})
    tab.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost).*"), lambda route: route.abort())
    tab.goto(page.url, wait_until="domcontentloaded")
    tab.locator("#run-btn").wait_for(timeout=60_000)
    yield tab
    tab.close()


def _shown_frames(page) -> list[str]:
    """data-frame of the path image each method shows now."""
    return page.eval_on_selector_all("#stage .stage-frame:not([hidden])", "els => els.map(e => e.dataset.frame)")


def _assert_inside_viewport(page, selector: str, count: int) -> None:
    boxes = [page.locator(selector).nth(k).bounding_box() for k in range(page.locator(selector).count())]
    assert len(boxes) == count, selector
    for box in boxes:
        assert box is not None and box["width"] > 100 and box["height"] > 100, (selector, box)
        assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 720, (selector, box)


def test_stage_view_fits_a_projector_and_steps_with_the_keyboard(projector):
    from playwright.sync_api import expect

    page = projector
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#examples .thumbnail-item").filter(has_text="demo: triangle").click()
    expect(page.locator("#predictions")).to_contain_text("triangle", timeout=60_000)
    page.locator("#quick-look").click()
    expect(page.locator("#steps input[type=number]")).to_have_value("32")
    page.locator("#run-btn").click()
    expect(page.locator("#maps").get_by_label("Thumbnail 2 of 2")).to_be_visible(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "talk_main_1280x720.png"))

    page.locator("#stage-open").click()
    stage = page.locator("#stage .magig-stage")
    expect(stage).to_be_visible()
    expect(page.locator("#stage .stage-frame:not([hidden]) img")).to_have_count(4, timeout=30_000)
    _assert_inside_viewport(page, "#stage .stage-map img", 2)
    _assert_inside_viewport(page, "#stage .stage-path:not(.stage-gradient) .stage-frame:not([hidden]) img", 2)
    _assert_inside_viewport(page, "#stage .stage-gradient .stage-frame:not([hidden]) img", 2)  # the gradient row
    expect(page.locator("#stage .stage-gradient .stage-frame:not([hidden]) figcaption").first).to_contain_text("∇F")
    slider = page.locator("#stage .stage-slider").bounding_box()
    assert slider["y"] + slider["height"] <= 720
    expect(page.locator("#stage .stage-map figcaption").first).to_have_text("MA-GIG")
    position = page.locator("#stage .stage-position")
    expect(position).to_have_text(re.compile(r"t = 0\.[45]\d"))  # opens mid-path, like the page's slider
    start, before = position.inner_text(), _shown_frames(page)
    index = int(page.locator("#stage .stage-slider").input_value())
    page.screenshot(path=str(ARTIFACTS / "talk_stage_1280x720.png"))

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(position).not_to_have_text(start)
    after = _shown_frames(page)
    assert after != before and all(int(a) > int(b) for a, b in zip(after, before, strict=True))
    assert page.locator("#stage .stage-slider").input_value() == str(index + 2)
    expect(page.locator("#stage .stage-frame:not([hidden]) figcaption").first).to_contain_text(
        position.inner_text())
    page.screenshot(path=str(ARTIFACTS / "talk_stage_stepped_1280x720.png"))

    page.keyboard.press("Space")  # plays in the browser
    page.wait_for_function("(i) => document.querySelector('#stage .stage-slider').value !== i", arg=str(index + 2))
    page.keyboard.press("Space")
    paused = page.locator("#stage .stage-slider").input_value()
    page.wait_for_timeout(600)
    assert page.locator("#stage .stage-slider").input_value() == paused

    page.keyboard.press("Escape")
    expect(stage).to_be_hidden()
    # keys are ignored while typing into a field, even with the stage shown
    page.locator("#target input").focus()
    page.evaluate("document.body.classList.add('magig-stage-on')")
    value = page.locator("#stage .stage-slider").input_value()
    page.keyboard.press("ArrowRight")
    assert page.locator("#stage .stage-slider").input_value() == value
    page.evaluate("document.body.classList.remove('magig-stage-on')")


SHARED = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "methods": "ma-gig,gig,gi", "steps": "12",
          "fraction": "0.2", "interpolation": "slerp", "objective": "logit", "target": "3",
          "example": "triangle_0.png"}


def _widget_values(page) -> dict:
    """Every run control's value as the page shows it."""
    values = {name: page.locator(f"#{name} input").first.input_value() for name in ("classifier", "autoencoder",
                                                                                     "target")}
    values |= {name: page.locator(f"#{name} input[type=number]").input_value() for name in ("steps", "fraction")}
    values["methods"] = page.eval_on_selector_all("#methods input:checked", "els => els.map(e => e.name)")
    for name in ("interpolation", "objective", "size"):
        values[name] = page.eval_on_selector_all(f"#{name} input:checked", "els => els.map(e => e.value)")
    return values


def test_a_shared_link_reopens_the_settings_and_the_example(projector):
    """A run with three methods, a class other than the top-1 and non-default options is shared with the Share
    button; the link, opened with ``?view=stage``, shows the stage at once, restores every control and the
    gallery image, and runs the same three methods for that class.

    Catches a link that drops a setting (the target, a third method, slerp, the objective), a target lost
    while the classifier's class list loads, and a ``?view=stage`` that never opens the stage.
    """
    from playwright.sync_api import expect

    page = projector.context.browser.new_page(viewport={"width": 1280, "height": 720})
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost).*"), lambda route: route.abort())
    page.goto(projector.url.split("?")[0] + "?" + "&".join(f"{k}={v}" for k, v in SHARED.items()),
              wait_until="domcontentloaded")
    expect(page.locator("[data-testid='toast-body']").first).to_contain_text("Settings restored from the link",
                                                                              timeout=60_000)
    page.locator("#talk").get_by_text("Talk mode").click()
    page.locator("#share-btn").click()
    link = page.locator("#share-link textarea")
    expect(link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?classifier=demo-shapes&.*example=\w+\.png"),
                               timeout=30_000)
    shared = link.input_value()
    page.close()

    reopened = projector.context.browser.new_page(viewport={"width": 1280, "height": 720})
    reopened.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost).*"), lambda route: route.abort())
    reopened.goto(shared.replace("?", "?view=stage&"), wait_until="domcontentloaded")
    expect(reopened.locator("#stage .magig-stage")).to_be_visible(timeout=60_000)
    expect(reopened.locator("[data-testid='toast-body']").first).to_contain_text("Settings restored from the link",
                                                                                  timeout=30_000)
    expect(reopened.locator("#input-image img")).to_be_visible(timeout=60_000)
    expect(reopened.locator("#target input")).to_have_value(re.compile(r"^3: "), timeout=30_000)
    assert _widget_values(reopened) == {
        "classifier": "demo-shapes", "autoencoder": "demo-shapes", "target": reopened.locator("#target input")
        .input_value(), "steps": "12", "fraction": "0.2", "methods": ["gi", "gig", "ma-gig"],
        "interpolation": ["slerp"], "objective": ["logit"], "size": ["classifier's own"]}
    reopened.keyboard.press("Escape")
    expect(reopened.locator("#stage .magig-stage")).to_be_hidden()
    reopened.locator("#run-btn").click()
    expect(reopened.locator("#maps").get_by_label("Thumbnail 3 of 3")).to_be_visible(timeout=120_000)
    expect(reopened.locator("#status")).to_contain_text("(class 3,")
    reopened.locator("#stage-open").click()
    expect(reopened.locator("#stage .stage-map img")).to_have_count(3, timeout=30_000)
    expect(reopened.locator("#stage .stage-frame:not([hidden]) img")).to_have_count(4, timeout=30_000)  # 2 path
    expect(reopened.locator("#stage .stage-gradient .stage-frame:not([hidden]) img")).to_have_count(2)  # + gradients
    reopened.screenshot(path=str(ARTIFACTS / "talk_stage_from_link_1280x720.png"))
    reopened.close()
