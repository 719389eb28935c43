"""Argument checks for ``explain``: every mistake a user can make gets a message that says what to do."""

from __future__ import annotations

import torch

from magig_core.errors import ArgumentError, ArgumentTypeError


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """A float batch [B,3,H,W] in [0,1]; a single [3,H,W] image gets a batch axis."""
    if not isinstance(images, torch.Tensor):
        raise ArgumentTypeError(
            f"{name} must be a torch.Tensor of shape [B,3,H,W] in [0,1]; got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ArgumentError(f"{name} must have shape [B,3,H,W] (RGB); got {tuple(images.shape)}")
    if images.shape[0] == 0 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ArgumentError(f"{name} is empty: shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ArgumentTypeError(
            f"{name} must be a float tensor in [0,1]; got {images.dtype} (divide uint8 images by 255)")
    if not bool(torch.isfinite(images).all()):
        raise ArgumentError(f"{name} contains NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ArgumentError(
            f"{name} must lie in [0,1] (raw RGB, before any normalization); got values in [{low:.3g}, {high:.3g}]. "
            "The classifier applies its own normalization."
        )
    return images


def check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise ArgumentTypeError(f"steps must be an integer ≥ 2; got {steps!r}")
    if steps < 2:
        raise ArgumentError(f"a path needs steps ≥ 2 (path points including both ends); got {steps}")
    return steps


def check_fraction(fraction: float) -> float:
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < float(fraction) <= 1:
        raise ArgumentError(f"fraction must be in (0, 1] (share of coordinates moved per inner step); got {fraction!r}")
    return float(fraction)


def check_choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ArgumentError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


def check_targets(targets, batch: int, num_classes: int, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(targets, device=device)
    if tensor.dim() == 0:
        tensor = tensor.expand(batch)
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise ArgumentTypeError(f"targets must be integer class indices; got dtype {tensor.dtype}")
    if tensor.shape != (batch,):
        raise ArgumentError(f"targets must hold one class index per image ({batch}); got shape {tuple(tensor.shape)}")
    bad = (tensor < 0) | (tensor >= num_classes)
    if bool(bad.any()):
        raise ArgumentError(
            f"target class {int(tensor[bad][0])} is out of range: the classifier has {num_classes} classes "
            f"(0…{num_classes - 1})"
        )
    return tensor.long()


def check_nonnegative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ArgumentError(f"{name} must be a non-negative integer; got {value!r}")
    return value


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(f"{name} must be a positive integer; got {value!r}")
    return value


def check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ArgumentError(f"{name} must be a positive number; got {value!r}")
    return value
