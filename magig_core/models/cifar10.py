"""The bundled CIFAR-10 classifiers as zoo models: real pretrained networks that explain photographs offline.

The networks were trained on 32×32 images, but a 32-pixel attribution map is too coarse to read, so the
classifier takes [0,1] images of any size and area-averages them to 32×32 *inside* the normalized-space
network (see ``AreaResize``). Images are explained at ``WORKING_SIZE`` (64×64) by default.

What this means for the maps: every 32×32 cell is the average of a block of input pixels (2×2 at 64 px),
so the classifier's gradient is constant over each block. The map still has the working resolution,
because the path's pixel differences (image k+1 − image k) vary inside a block; in latent-space methods
they come from the decoder at full resolution.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from magig_core.bundled import bundled_path
from magig_core.errors import WeightsUnavailableError
from magig_core.models.checkpoints import load_strict, read_state_dict
from magig_core.models.cifar_resnet import cifar_resnet
from magig_core.models.image_classifier import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
NATIVE_SIZE = 32
WORKING_SIZE = (64, 64)
BUNDLED_DIR = bundled_path("models", "cifar10-resnet")
# zoo name → (architecture, checkpoint file; the hash is the file's sha256 prefix)
CHECKPOINTS = {
    "cifar10-resnet20": ("resnet20", "cifar10-resnet20-12fca82f.th"),
    "cifar10-resnet56": ("resnet56", "cifar10-resnet56-4bfd9763.th"),
}


class AreaResize(nn.Module):
    """Averages the input down (or replicates it up) to ``size``×``size``, the network's native resolution.

    Area averaging is linear with weights summing to one per output pixel, so it commutes with the
    per-channel normalization ``(x − mean)/std``: placed inside the normalized-space network it keeps the
    attribution engine's geometry exact while images are explained at a larger working resolution.
    """

    def __init__(self, size: int = NATIVE_SIZE) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        return F.adaptive_avg_pool2d(x, self.size)


def bundled_checkpoint(name: str) -> Path:
    return BUNDLED_DIR / CHECKPOINTS[name][1]


def load_cifar10_classifier(
    name: str, weights: str | Path | None = None, *, pretrained: bool = True
) -> ImageClassifier:
    """``cifar10-resnet20`` / ``cifar10-resnet56`` from the bundled checkpoint, or ``weights=`` a local copy
    (the checkpoint file, or a folder holding it under its original name); random ones without ``pretrained``.
    """
    network = cifar_resnet(CHECKPOINTS[name][0], len(CIFAR10_CLASSES))
    if pretrained:
        path = _checkpoint_file(name, weights)
        load_strict(network, read_state_dict(path, model=name), model=f"{name} ({path.name})")
    return ImageClassifier(
        nn.Sequential(AreaResize(NATIVE_SIZE), network),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=CIFAR10_CLASSES,
        input_size=WORKING_SIZE,
        name=name,
        representation_module=network.linear,
    )


def _checkpoint_file(name: str, weights: str | Path | None) -> Path:
    filename = CHECKPOINTS[name][1]
    if weights is None:
        path = bundled_checkpoint(name)
        remedy = "reinstall MA-GIG Explorer (the file ships in the package), or pass weights= a copy"
    else:
        path = Path(weights).expanduser()
        path = path / filename if path.is_dir() else path
        remedy = f"pass weights= the checkpoint file, or a folder holding {filename}"
    if not path.is_file():
        raise WeightsUnavailableError(
            name,
            str(path),
            "the file does not exist.",
            [remedy, "the original is in github akamaster/pytorch_resnet_cifar10, pretrained_models/"],
        )
    return path
