"""The guided path rule (Guided IG's inner loop), vectorized over a batch of independent rows.

Each call moves every row from its current point towards its end point until its L1 distance to the end
equals that row's target, always moving the coordinates with the smallest |gradient| first. Quantiles,
selections, step fractions and loop termination are all per row; rows never influence each other.
"""

from __future__ import annotations

import torch

INTERPOLATIONS = ("lerp", "slerp")  # how a partial move (or EIG's line) goes between two points
AT_TARGET_TOLERANCE = 1e-9
SLERP_LINEAR_COSINE = 0.9995


def selection_rank(num_coords: int, fraction: float) -> int:
    """1-based rank of the 'lower'-interpolated fraction-quantile among ``num_coords`` values."""
    return int(fraction * (num_coords - 1)) + 1


def guided_move(
    coords: torch.Tensor,
    end: torch.Tensor,
    grad: torch.Tensor,
    target_l1: torch.Tensor,
    *,
    fraction: float,
    interpolation: str = "lerp",
) -> torch.Tensor:
    """One guided step for rows of flattened coordinates ``[R, n]``; returns the new coordinates.

    Coordinates already at the end point get an infinite |gradient| so they are never selected; the
    selection is every finite |g| at or below the row's quantile (ties included). Full moves snap the
    selection onto the end point; the final partial move covers exactly the remaining L1 distance
    (linear) or slerps the selected sub-vector by the same fraction.
    """
    rows, n = coords.shape
    rank = selection_rank(n, fraction)
    # A non-finite gradient carries no ranking information: treat it as flat (zero), like the integrator.
    abs_grad = torch.nan_to_num(grad.detach(), nan=0.0, posinf=0.0, neginf=0.0).abs().to(coords.dtype)
    active = torch.ones(rows, dtype=torch.bool, device=coords.device)
    # Each full move puts at least one more coordinate on its end value, so n + 2 passes always suffice;
    # the bound only guards against a float corner case looping forever. A pass over rows that are all
    # inactive changes nothing, so the one host synchronization per pass sits at its end (the loop's
    # length depends on the data; on a GPU that is the walk's only wait for the device).
    for _ in range(n + 2):
        distance = (coords - end).abs()
        current_l1 = distance.sum(dim=1)
        reached = torch.isclose(current_l1, target_l1, rtol=AT_TARGET_TOLERANCE, atol=AT_TARGET_TOLERANCE)
        active = active & ~reached
        abs_grad = abs_grad.masked_fill(distance < AT_TARGET_TOLERANCE, float("inf"))
        threshold = abs_grad.kthvalue(rank, dim=1).values
        selected = (abs_grad <= threshold.unsqueeze(1)) & torch.isfinite(abs_grad)
        selected_l1 = (distance * selected).sum(dim=1)
        gamma = torch.where(
            selected_l1 > 0, (current_l1 - target_l1) / selected_l1, torch.full_like(current_l1, float("inf"))
        )
        full_rows = active & (gamma > 1)
        partial_rows = active & ~(gamma > 1)
        coords = torch.where(selected & full_rows.unsqueeze(1), end, coords)
        coords = _partial_move(coords, end, selected & partial_rows.unsqueeze(1), gamma, interpolation)
        # A row whose selection is empty can make no progress: it stays where it is.
        active = full_rows & selected.any(dim=1)
        if not bool(active.any()):
            break
    return coords


def _partial_move(
    coords: torch.Tensor, end: torch.Tensor, mask: torch.Tensor, gamma: torch.Tensor, interpolation: str
) -> torch.Tensor:
    step = gamma.unsqueeze(1)
    if interpolation == "lerp":
        return torch.where(mask, coords + step * (end - coords), coords)
    return torch.where(mask, masked_slerp(coords, end, mask, gamma), coords)


def masked_slerp(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Slerp of each row's selected sub-vector (un-normalized vectors, linear fallback near 0/parallel).

    The angle is computed in float64; the result keeps the coordinates' dtype. Only entries under
    ``mask`` are meaningful.
    """
    a64 = (a * mask).double()
    b64 = (b * mask).double()
    t64 = t.double().unsqueeze(1)
    norm_a = a64.norm(dim=1, keepdim=True)
    norm_b = b64.norm(dim=1, keepdim=True)
    degenerate = (norm_a < 1e-9) | (norm_b < 1e-9)
    cosine = ((a64 * b64).sum(dim=1, keepdim=True) / (norm_a * norm_b).clamp_min(1e-300)).clamp(-1.0, 1.0)
    linear = degenerate | (cosine.abs() > SLERP_LINEAR_COSINE)
    theta = torch.arccos(cosine)
    sin_theta = torch.sin(theta).where(~linear, torch.ones_like(theta))
    coef_a = torch.where(linear, 1 - t64, torch.sin((1 - t64) * theta) / sin_theta)
    coef_b = torch.where(linear, t64, torch.sin(t64 * theta) / sin_theta)
    return (coef_a * a64 + coef_b * b64).to(a.dtype)


def slerp_vectors(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Row-wise slerp of whole vectors ``[R, n]`` at fractions ``t`` ``[R]`` (EIG's optional path)."""
    return masked_slerp(a, b, torch.ones_like(a, dtype=torch.bool), t)
