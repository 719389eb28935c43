"""Files shipped inside the package (weights, examples, photographs), found wherever it is installed.

They live under ``magig_core/assets`` and are declared as package data, so a wheel installed outside
this checkout still explains offline.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

ASSETS_DIR = Path(str(resources.files("magig_core").joinpath("assets")))


def bundled_path(*parts: str) -> Path:
    """Path of a bundled file or folder, e.g. ``bundled_path("models", "taef2")``."""
    return ASSETS_DIR.joinpath(*parts)
