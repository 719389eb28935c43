"""Small perturbations that keep a method's definition, for ``explain(stability=K, average=K)``.

Run r (0, 1, 2, …) of a method differs from run 0 (the plain call) by one of:

- ``points``: the path has r points fewer (N, N−1, N−2, …). The path's definition, endpoints and rule
  are unchanged; only its discretization moves. Methods with a point count use it by default: it is
  the perturbation under which a guided path shows its chaos, and it needs no change to the image.
  Runs of different lengths cannot walk in lockstep, so they run one after another.
- ``noise``: the input gets Gaussian noise of ``NOISE_STD`` (one 8-bit intensity level, 1/255, in
  [0,1] pixels; clamped to [0,1]), a fresh draw per run from ``seed + r``. Methods without a point
  count use it by default; all runs share one batch (lockstep), so K runs cost about one run with K
  times the images.
"""

from __future__ import annotations

import torch

from magig_core.attribution.registry import MethodSpec
from magig_core.errors import ArgumentError

PERTURBATIONS = ("auto", "points", "noise")
NOISE_STD = 1.0 / 255.0


def resolve_perturbation(spec: MethodSpec, perturbation: str) -> str:
    """``points`` or ``noise`` for this method (``auto``: points where the method has a point count)."""
    if perturbation not in PERTURBATIONS:
        raise ArgumentError(f"perturbation must be one of {', '.join(PERTURBATIONS)}; got {perturbation!r}")
    has_points = "steps" in spec.option_names
    if perturbation == "points" and not has_points:
        raise ArgumentError(f"{spec.name} has no path-point count to vary; use perturbation='noise' or 'auto'")
    if perturbation == "auto":
        return "points" if has_points else "noise"
    return perturbation


def point_counts(steps: int, runs: int) -> list[int]:
    """Path points of runs 0 … runs−1: N, N−1, …; every path keeps at least two points."""
    counts = [steps - r for r in range(runs)]
    if counts[-1] < 2:
        raise ArgumentError(f"{runs} runs with neighbouring point counts need steps >= {runs + 1}; got {steps}")
    return counts


def noisy_copies(images: torch.Tensor, runs: int, seed: int) -> torch.Tensor:
    """[runs·B, C, H, W]: copy 0 is ``images`` itself, copy r adds noise drawn from ``seed + r``."""
    copies = [images]
    for r in range(1, runs):
        generator = torch.Generator().manual_seed(seed + r)
        noise = torch.randn(images.shape, generator=generator, dtype=torch.float64) * NOISE_STD
        copies.append((images + noise.to(images)).clamp(0.0, 1.0))
    return torch.cat(copies)
