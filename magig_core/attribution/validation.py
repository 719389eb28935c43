"""Argument checks for ``explain``: every mistake a user can make gets a message that says what to do."""

from __future__ import annotations

import torch

METHODS = ("gi", "ig", "ig2", "agi", "gig", "eig", "mig", "ma-gig")
LATENT_METHODS = ("eig", "mig", "ma-gig")
ALIASES = {"magig": "ma-gig", "ma_gig": "ma-gig", "latent-gig": "ma-gig", "guided-ig": "gig", "guidedig": "gig"}
DEFAULT_STEPS = {"ig": 200, "gig": 200, "eig": 200, "mig": 200, "ma-gig": 200, "ig2": 201}
DEFAULT_FRACTION = {"gig": 0.1, "ma-gig": 0.05}


def canonical_method(method: str) -> str:
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {', '.join(METHODS)}; got {type(method).__name__}")
    name = method.strip().lower().replace(" ", "-")
    name = ALIASES.get(name, name)
    if name not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    return name


def check_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """A float batch [B,3,H,W] in [0,1]; a single [3,H,W] image gets a batch axis."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [B,3,H,W] in [0,1]; got {type(images).__name__}")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must have shape [B,3,H,W] (RGB); got {tuple(images.shape)}")
    if images.shape[0] == 0 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"{name} is empty: shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0,1]; got {images.dtype} (divide uint8 images by 255)")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must lie in [0,1] (raw RGB, before any normalization); got values in [{low:.3g}, {high:.3g}]. "
            "The classifier applies its own normalization."
        )
    return images


def check_steps(steps: int, method: str) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be an integer ≥ 2; got {steps!r}")
    if steps < 2:
        raise ValueError(f"{method} needs steps ≥ 2 (path points including both ends); got {steps}")
    return steps


def check_fraction(fraction: float) -> float:
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < float(fraction) <= 1:
        raise ValueError(f"fraction must be in (0, 1] (share of coordinates moved per inner step); got {fraction!r}")
    return float(fraction)


def check_choice(value: str, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


def check_targets(targets, batch: int, num_classes: int, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(targets, device=device)
    if tensor.dim() == 0:
        tensor = tensor.expand(batch)
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise TypeError(f"targets must be integer class indices; got dtype {tensor.dtype}")
    if tensor.shape != (batch,):
        raise ValueError(f"targets must hold one class index per image ({batch}); got shape {tuple(tensor.shape)}")
    bad = (tensor < 0) | (tensor >= num_classes)
    if bool(bad.any()):
        raise ValueError(
            f"target class {int(tensor[bad][0])} is out of range: the classifier has {num_classes} classes (0…{num_classes - 1})"
        )
    return tensor.long()


def check_nonnegative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return value


def check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return value
