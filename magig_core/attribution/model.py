"""The classifier as the engine sees it: a function of *normalized* input, plus the scalar objective.

Every path in the paper lives in the classifier's normalized input space, so the engine strips the
normalization off a zoo classifier and works on ``(x - mean) / std`` directly. A plain ``nn.Module`` has
no normalization of its own and is used as it is (mean 0, std 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NormalizedModel:
    """``forward`` maps normalized images to logits; ``mean``/``std`` convert to and from [0,1]."""

    module: nn.Module
    mean: torch.Tensor  # [1,C,1,1]
    std: torch.Tensor  # [1,C,1,1]
    autocast_dtype: torch.dtype | None = None  # reduced-precision network passes (bf16/fp16)

    def autocast(self):
        """Networks run in reduced precision if asked; the path geometry always stays in full precision."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.mean.device.type, dtype=self.autocast_dtype)

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        forward_normalized = getattr(self.module, "forward_normalized", None)
        with self.autocast():
            logits = forward_normalized(normalized) if forward_normalized is not None else self.module(normalized)
        return logits.to(normalized.dtype)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        return normalized * self.std + self.mean


def model_device(module: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return fallback


def wrap_classifier(
    classifier: nn.Module, *, device: torch.device, dtype: torch.dtype, autocast_dtype: torch.dtype | None = None
) -> NormalizedModel:
    """Read the normalization a zoo classifier carries, or take a plain module as already normalized."""
    has_normalization = hasattr(classifier, "forward_normalized") and hasattr(classifier, "mean")
    if has_normalization:
        mean = classifier.mean.detach().to(device=device, dtype=dtype).view(1, -1, 1, 1)
        std = classifier.std.detach().to(device=device, dtype=dtype).view(1, -1, 1, 1)
    else:
        mean = torch.zeros(1, 1, 1, 1, device=device, dtype=dtype)
        std = torch.ones(1, 1, 1, 1, device=device, dtype=dtype)
    return NormalizedModel(classifier, mean, std, autocast_dtype)


def objective_values(logits: torch.Tensor, targets: torch.Tensor, objective: str) -> torch.Tensor:
    """F_c per row: softmax probability (the paper's choice) or raw logit of the row's own target."""
    scores = torch.softmax(logits, dim=1) if objective == "prob" else logits
    return scores.gather(1, targets.view(-1, 1)).squeeze(1)


def target_probabilities(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits.detach(), dim=1).gather(1, targets.view(-1, 1)).squeeze(1)


@dataclass
class GradientPass:
    """One classifier forward and one backward: objective, target probability and requested gradients."""

    outputs: torch.Tensor  # [R] objective values, detached
    probs: torch.Tensor  # [R] target-class probabilities, detached
    logits: torch.Tensor  # [R,K] detached
    grads: tuple[torch.Tensor, ...]


def gradient_pass(
    model: NormalizedModel,
    images: torch.Tensor,
    targets: torch.Tensor,
    objective: str,
    wrt: Sequence[torch.Tensor],
) -> GradientPass:
    """Differentiate sum_r F_{c_r}(image_r) once; rows are independent, so each row gets its own gradient.

    ``wrt`` may hold the image itself and any tensor upstream of it (e.g. the latent that was decoded into
    it): a single backward pass then yields all of them.
    """
    logits = model.forward(images)
    values = objective_values(logits, targets, objective)
    grads = torch.autograd.grad(values.sum(), list(wrt))
    return GradientPass(values.detach(), target_probabilities(logits, targets), logits.detach(), grads)


def chunks(total: int, size: int) -> list[range]:
    return [range(start, min(start + size, total)) for start in range(0, total, size)]
