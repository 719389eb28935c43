"""Path diagnostics that come free with an ``Explanation``: confidence along the path and completeness.

Curves are indexed by the normalized path position t_k = k/(N−1) (baseline side 0, input side 1) and
summarised by their trapezoid area over t, as in the paper's Appendix H.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magig_core.attribution.result import Explanation


@dataclass
class PathCurve:
    """Values along the path for B images at positions t ([F] in [0,1]) and their trapezoid AUC."""

    name: str
    t: torch.Tensor  # [F]
    values: torch.Tensor  # [B,F]
    reason: str | None = None  # why this curve is not the one asked for (e.g. a distance fallback)

    @property
    def auc(self) -> torch.Tensor:
        """[B] trapezoid area over t; a single point gives its value."""
        return trapezoid_auc(self.values, self.t)


def path_positions(num_points: int, indices: torch.Tensor | None = None) -> torch.Tensor:
    """t_k = k/(N−1) for every path index (or for the given subset of indices)."""
    k = torch.arange(num_points) if indices is None else indices.detach().cpu()
    return k.double() / max(num_points - 1, 1)


def trapezoid_auc(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Trapezoid area of each row of ``values`` [B,F] over positions ``t`` [F]."""
    values = values.detach().double().cpu()
    if values.shape[-1] == 1:
        return values[..., 0]
    return torch.trapezoid(values, t.detach().double().cpu(), dim=-1)


def confidence_curve(explanation: Explanation) -> PathCurve:
    """Target-class softmax probability at every path point, reused from the attribution's own forwards."""
    probs = explanation.path_probs.detach().cpu()
    return PathCurve("confidence", path_positions(probs.shape[1]), probs.double())


@dataclass
class Completeness:
    """|ΣA − (F_c(input) − F_c(baseline))| per image, absolute and relative to |F_c(input) − F_c(baseline)|."""

    absolute: torch.Tensor  # [B]
    relative: torch.Tensor  # [B], NaN where the output gap is 0


def completeness(explanation: Explanation) -> Completeness:
    return Completeness(
        absolute=explanation.completeness_residual.detach().double().cpu(),
        relative=explanation.completeness_relative.detach().double().cpu(),
    )
