"""The example gallery and IG2's reference bank.

Every example names the models it is meant for: photographs (and real CIFAR-10 test images for the
classes no licensed photograph covers) go to the bundled real pair, CIFAR-10 ResNet-56 and the TAEF2
autoencoder; the synthetic demo scenes keep the demo-shapes models they were drawn for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from magig_core.bundled import bundled_path
from magig_core.demo.example_scenes import load_examples
from magig_core.images import load_image, to_tensor
from magig_core.models.cifar10 import CIFAR10_CLASSES

PHOTOS_DIR = bundled_path("photos")
CIFAR10_DIR = bundled_path("cifar10-test")
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")
REAL_CLASSIFIER, REAL_AUTOENCODER = "cifar10-resnet56", "taef2"
DEMO_MODELS = "demo-shapes"


@dataclass(frozen=True)
class Example:
    path: str
    caption: str
    classifier: str  # the models this example is meant for
    autoencoder: str


def gallery(photos_dir: Path = PHOTOS_DIR, cifar10_dir: Path = CIFAR10_DIR) -> list[Example]:
    """Photographs first, then a CIFAR-10 test image for each class without a photograph, then demo scenes."""
    photos = sorted(p for p in photos_dir.glob("*") if p.suffix.lower() in PHOTO_EXTENSIONS)
    covered = {word for p in photos for word in p.stem.split("_") if word in CIFAR10_CLASSES}
    examples = [Example(str(p), f"photo: {p.stem.replace('_', ' ')}", REAL_CLASSIFIER, REAL_AUTOENCODER)
                for p in photos]
    for name in CIFAR10_CLASSES:
        thumbnails = sorted((cifar10_dir / name).glob("*.jpg")) if name not in covered else []
        if thumbnails:
            examples.append(Example(str(thumbnails[0]), f"CIFAR-10: {name}", REAL_CLASSIFIER, REAL_AUTOENCODER))
    examples += [Example(e["path"], f"demo: {e['class_name']}", DEMO_MODELS, DEMO_MODELS) for e in load_examples()]
    return examples


def reference_bank(size: tuple[int, int], examples: list[Example]) -> torch.Tensor:
    """[R,3,H,W] gallery images at the working size: IG2's reference set for single images."""
    return torch.cat([to_tensor(load_image(e.path).image, size) for e in examples])
