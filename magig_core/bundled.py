"""Files shipped with the project (weights, examples, photographs), found wherever it is installed.

They live in the repository's top-level ``assets/`` folder, where a Space's visitors and a reader of the
repository look for them. A wheel maps that folder into the package at build time (``magig_core/assets``,
see pyproject.toml), so an installed wheel finds them inside the package; a checkout and an editable
install find them next to the package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _assets_dir() -> Path:
    packaged = Path(str(resources.files("magig_core"))) / "assets"  # an installed wheel
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / "assets"  # a checkout or an editable install


ASSETS_DIR = _assets_dir()


def bundled_path(*parts: str) -> Path:
    """Path of a bundled file or folder, e.g. ``bundled_path("models", "taef2")``."""
    return ASSETS_DIR.joinpath(*parts)
