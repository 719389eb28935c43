"""Wall-clock measurement that stays honest on shared machines and on GPUs.

Every timed call is bracketed by device synchronization; comparisons are taken as interleaved pairs
(A, B, A, B, ...) in one process, so load arriving from elsewhere hits both sides alike and the ratio
survives where the absolute seconds do not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from magig_core.attribution.context import synchronize
from magig_core.attribution.model import wrap_classifier


def timed(function: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def median_seconds(function: Callable[[], object], repeats: int, device: torch.device) -> float:
    return statistics.median(timed(function, device) for _ in range(repeats))


def interleaved(functions: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, measured round-robin after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            samples[name].append(timed(function, device))
    return {name: statistics.median(values) for name, values in samples.items()}


def floor_step(classifier: nn.Module, autoencoder: nn.Module, latent: torch.Tensor,
               precision_dtype: torch.dtype | None = None) -> Callable[[], None]:
    """One decoder forward+backward plus one classifier forward+backward: what a fused step cannot avoid.

    It goes through the engine's own classifier wrapper, so autocast and normalization cost what they
    cost in a real step.
    """
    model = wrap_classifier(classifier, device=latent.device, dtype=torch.float32, autocast_dtype=precision_dtype)

    def step() -> None:
        z = latent.detach().clone().requires_grad_(True)
        with model.autocast():
            decoded = autoencoder.decode(z)
        image = model.normalize(decoded.float())
        logits = model.forward(image)
        torch.autograd.grad(torch.softmax(logits, 1)[:, 0].sum(), [image, z])

    return step
