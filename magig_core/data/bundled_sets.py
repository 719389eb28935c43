"""Labelled bundled images for the benchmark scripts: gallery photographs of CIFAR-10 classes and test images."""

from __future__ import annotations

from pathlib import Path

import torch

from magig_core.data.datasets import cifar10_test
from magig_core.explorer.examples import gallery
from magig_core.images import load_image, to_tensor
from magig_core.models.cifar10 import CIFAR10_CLASSES


def photos_and_cifar10(photos: int, thumbnails: int, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Up to ``photos`` gallery photographs of CIFAR-10 classes (labelled by file name), then the first
    ``thumbnails`` bundled CIFAR-10 test images (class-balanced): images [B,3,size,size], labels, names."""
    chosen, labels, names = [], [], []
    for example in gallery():
        words = Path(example.path).stem.split("_")
        label = next((CIFAR10_CLASSES.index(w) for w in words if w in CIFAR10_CLASSES), None)
        if example.caption.startswith("photo") and label is not None and len(chosen) < photos:
            chosen.append(to_tensor(load_image(example.path).image, (size, size)))
            labels.append(label)
            names.append(Path(example.path).name)
    test_set = cifar10_test(size=size)
    for index in range(thumbnails):
        chosen.append(test_set.load(index).unsqueeze(0))
        labels.append(test_set.items[index].label)
        names.append(test_set.items[index].image_id)
    return torch.cat(chosen), torch.tensor(labels), names
