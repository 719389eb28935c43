"""The browser test's run/skip/fail decision, without a browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import browser_check
from tests.browser_check import REQUIRE_BROWSER_ENV, browser_required, decide, missing_browser_parts


@pytest.mark.parametrize("required", [False, True])
def test_nothing_missing_runs_whether_or_not_required(required: bool) -> None:
    assert decide([], required).action == "run"


def test_missing_browser_skips_locally_and_fails_when_required() -> None:
    missing = ["Debian's chromium at /nowhere/chromium"]
    local, ci = decide(missing, required=False), decide(missing, required=True)
    assert (local.action, ci.action) == ("skip", "fail")
    assert "/nowhere/chromium" in local.message and "/nowhere/chromium" in ci.message
    assert ci.message.startswith(f"{REQUIRE_BROWSER_ENV}=1 but the browser test needs")


@pytest.mark.parametrize(
    ("environ", "required"),
    [({}, False), ({REQUIRE_BROWSER_ENV: ""}, False), ({REQUIRE_BROWSER_ENV: "0"}, False),
     ({REQUIRE_BROWSER_ENV: "1"}, True), ({"OTHER": "1"}, False)],
)
def test_only_the_variable_set_to_1_requires_the_browser(environ: dict[str, str], required: bool) -> None:
    assert browser_required(environ) is required


def test_missing_parts_name_chromium_and_playwright(tmp_path: Path, monkeypatch) -> None:
    present = tmp_path / "chromium"
    present.touch()
    monkeypatch.setattr(browser_check, "_playwright_installed", lambda: True)
    assert missing_browser_parts(present) == []
    monkeypatch.setattr(browser_check, "_playwright_installed", lambda: False)
    missing = missing_browser_parts(tmp_path / "absent")
    assert len(missing) == 2 and str(tmp_path / "absent") in missing[0] and "playwright" in missing[1]
