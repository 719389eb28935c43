"""Whether the browser test runs, skips or fails: locally a missing browser is a skip, in CI a failure.

CI sets ``MAGIG_REQUIRE_BROWSER=1`` after installing Chromium, so a broken install can never pass as a
run in which the browser test was quietly skipped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

REQUIRE_BROWSER_ENV = "MAGIG_REQUIRE_BROWSER"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # screenshots a person can look at (CI keeps them)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class BrowserDecision:
    action: Literal["run", "skip", "fail"]
    message: str = ""


def missing_browser_parts(chromium: Path) -> list[str]:
    """What the browser test lacks: Debian's Chromium binary and the Playwright package that drives it."""
    missing = []
    if not chromium.exists():
        missing.append(f"Debian's chromium at {chromium} (apt-get install chromium; no browser is downloaded)")
    if not _playwright_installed():
        missing.append("the playwright package (pip install -r requirements.txt)")
    return missing


def _playwright_installed() -> bool:
    return importlib.util.find_spec("playwright") is not None


def browser_required(environ: Mapping[str, str]) -> bool:
    return environ.get(REQUIRE_BROWSER_ENV, "") == "1"


def decide(missing: Sequence[str], required: bool) -> BrowserDecision:
    """Run when nothing is missing; otherwise skip, or fail when the environment requires the browser."""
    if not missing:
        return BrowserDecision("run")
    needs = "needs " + " and ".join(missing)
    if required:
        return BrowserDecision("fail", f"{REQUIRE_BROWSER_ENV}=1 but the browser test {needs}")
    return BrowserDecision("skip", needs)


def require_browser() -> None:
    """Skip a browser test without Chromium or Playwright, or fail it where CI requires it to run."""
    import os

    import pytest

    decision = decide(missing_browser_parts(CHROMIUM), browser_required(os.environ))
    if decision.action == "fail":
        pytest.fail(decision.message, pytrace=False)
    if decision.action == "skip":
        pytest.skip(decision.message)
