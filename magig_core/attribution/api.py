"""``explain``: the one entry point for every attribution method (implementation in progress)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from magig_core.attribution.result import Explanation

METHODS = ("gi", "ig", "ig2", "agi", "gig", "eig", "mig", "ma-gig")


def explain(
    images: torch.Tensor,
    classifier: nn.Module,
    method: str = "ma-gig",
    *,
    autoencoder=None,
    targets: torch.Tensor | list[int] | None = None,
    steps: int | None = None,
    fraction: float | None = None,
    interpolation: str = "lerp",
    objective: str = "prob",
    frames: int = 0,
    references: torch.Tensor | None = None,
    ig2_step_size: float = 0.02,
    agi_iterations: int = 15,
    agi_epsilon: float = 0.05,
    agi_negative_classes: int = 10,
    mig_learning_rate: float = 5e-5,
    mig_iterations: int = 2,
    mig_energy_threshold: float = 1000.0,
    mig_sweep: str = "gauss-seidel",
    chunk_size: int | None = None,
    seed: int = 0,
    callback: Callable[[int, int], None] | None = None,
) -> Explanation:
    raise NotImplementedError
