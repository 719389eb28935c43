"""The classifier as the engine sees it: a function of *normalized* input, plus the scalar objective.

Every path in the paper lives in the classifier's normalized input space, so the engine strips the
normalization off a zoo classifier and works on ``(x - mean) / std`` directly. A plain ``nn.Module`` has
no normalization of its own and is used as it is (mean 0, std 1).
"""

from __future__ import annotations

import warnings
import weakref
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
    takes_unit_range: bool = False  # the module normalizes inside its forward: call it on [0,1] images

    def autocast(self):
        """Networks run in reduced precision if asked; the path geometry always stays in full precision."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.mean.device.type, dtype=self.autocast_dtype)

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        forward_normalized = getattr(self.module, "forward_normalized", None)
        with self.autocast():
            if self.takes_unit_range:
                logits = self.module(self.denormalize(normalized))
            elif forward_normalized is not None:
                logits = forward_normalized(normalized)
            else:
                logits = self.module(normalized)
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


class IdentityNormalizationWarning(UserWarning):
    """A plain classifier was taken as consuming already-normalized input (mean 0, std 1)."""


_WARNED: weakref.WeakSet = weakref.WeakSet()


def wrap_classifier(
    classifier: nn.Module, *, device: torch.device, dtype: torch.dtype, autocast_dtype: torch.dtype | None = None,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> NormalizedModel:
    """Read the normalization a zoo classifier carries, take the one the caller names, or assume none.

    With ``normalization`` the module is called on [0,1] images (it normalizes inside its forward) while
    the paths live in (x - mean) / std. Without either, the paths live in [0,1] space, which changes
    GIG's schedule, AGI's and IG2's steps and DiffID's imputation against the paper: say so, once.
    """
    def column(values) -> torch.Tensor:
        return torch.as_tensor(values, device=device, dtype=dtype).view(1, -1, 1, 1)

    if hasattr(classifier, "forward_normalized") and hasattr(classifier, "mean"):
        return NormalizedModel(classifier, column(classifier.mean.detach()), column(classifier.std.detach()),
                               autocast_dtype)
    if normalization is not None:
        mean, std = normalization
        return NormalizedModel(classifier, column(mean), column(std), autocast_dtype, takes_unit_range=True)
    if classifier not in _WARNED:
        _WARNED.add(classifier)
        warnings.warn(
            f"{type(classifier).__name__} carries no normalization, so its input is taken as already normalized "
            "(mean 0, std 1) and every path lives in [0,1] space. If it normalizes inside forward(), pass "
            "normalization=(mean, std) or wrap the bare network in magig_core.models.ImageClassifier.",
            IdentityNormalizationWarning, stacklevel=4,
        )
    return NormalizedModel(classifier, column([0.0]), column([1.0]), autocast_dtype)


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
