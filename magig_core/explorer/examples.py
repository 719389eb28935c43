"""The example gallery (bundled demo scenes and licensed photographs) and IG2's reference bank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from magig_core.bundled import bundled_path
from magig_core.demo.examples import load_examples
from magig_core.images import load_image, to_tensor

PHOTOS_DIR = bundled_path("photos")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Example:
    path: str
    caption: str


def gallery(photos_dir: Path = PHOTOS_DIR) -> list[Example]:
    """Demo scenes first (they work offline with the demo models), then the photographs."""
    examples = [Example(e["path"], f"demo: {e['class_name']}") for e in load_examples()]
    photos = sorted(p for p in photos_dir.glob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    return examples + [Example(str(p), f"photo: {p.stem.replace('_', ' ')}") for p in photos]


def reference_bank(size: tuple[int, int], examples: list[Example]) -> torch.Tensor:
    """[R,3,H,W] gallery images at the classifier's input size: IG2's reference set for single images."""
    return torch.cat([to_tensor(load_image(e.path).image, size) for e in examples])
