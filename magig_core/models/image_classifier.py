"""The classifier contract: a module on [0,1] images that owns its input normalization.

Attribution methods work in the classifier's *normalized* input space (that is where the paper's
distances, step sizes and imputations live), so the wrapper exposes the normalization explicitly
instead of hiding it inside ``forward``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageClassifier(nn.Module):
    """A frozen, eval-mode network taking [0,1] images and returning logits.

    ``network`` consumes normalized input ``(x - mean) / std``; ``representation_module`` is the final
    linear block whose *input* IG2 uses as the image representation.
    """

    def __init__(
        self,
        network: nn.Module,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        class_names: Sequence[str] | None = None,
        input_size: tuple[int, int] = (256, 256),
        name: str = "classifier",
        representation_module: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.class_names = list(class_names) if class_names is not None else None
        self.input_size = tuple(input_size)
        self.name = name
        self.representation_module = representation_module
        self.eval()
        self.requires_grad_(False)

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names is not None else None

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        return normalized * self.std + self.mean

    def forward_normalized(self, normalized: torch.Tensor) -> torch.Tensor:
        return self.network(normalized)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_normalized(self.normalize(images))

    def train(self, mode: bool = True) -> ImageClassifier:
        """Stay in eval mode: BatchNorm statistics and dropout must never change under attribution."""
        return super().train(False)
