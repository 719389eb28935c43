"""Analytic inside-tests for the demo world's shapes, evaluated on whole coordinate grids at once.

Every class shape is defined in a local frame where the shape fits inside a circle of radius
``BOUND_RADIUS`` (1 = the object's nominal radius), so placement only needs one number per shape.
Hard inside-tests (no anti-aliasing) keep the ground-truth mask *exactly* the painted pixels.
"""

from __future__ import annotations

import math

import torch

CLASS_NAMES: tuple[str, ...] = ("disc", "square", "triangle", "cross", "star", "ring")
BOUND_RADIUS = 1.1  # every class shape lies within this radius of its centre (local units)

_SQUARE_HALF_SIDE = 0.75
_TRIANGLE_CIRCUMRADIUS = 1.1
_CROSS_HALF_WIDTH = 0.3
_STAR_OUTER, _STAR_INNER = 1.1, 0.45
_RING_INNER = 0.55


def _regular_polygon(u: torch.Tensor, v: torch.Tensor, sides: int, circumradius: float) -> torch.Tensor:
    """Intersection of ``sides`` half-planes, one vertex pointing along +v."""
    inside = torch.ones_like(u, dtype=torch.bool)
    apothem = circumradius * math.cos(math.pi / sides)
    for k in range(sides):
        angle = math.pi / 2 + math.pi / sides + 2 * math.pi * k / sides
        inside &= u * math.cos(angle) + v * math.sin(angle) <= apothem
    return inside


def _star(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Five-pointed star: fold the angle into one half-spike, then one half-plane test."""
    sector = 2 * math.pi / 5
    angle = torch.remainder(torch.atan2(v, u) - math.pi / 2, sector)
    angle = torch.where(angle > sector / 2, sector - angle, angle)
    rho = torch.sqrt(u * u + v * v)
    px, py = rho * torch.cos(angle), rho * torch.sin(angle)
    ax, ay = _STAR_OUTER, 0.0
    bx, by = _STAR_INNER * math.cos(sector / 2), _STAR_INNER * math.sin(sector / 2)
    # The origin is on the positive side of the edge A→B (cross product = by * ax > 0).
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0


def class_shape(label: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Inside-test of each row's class shape; ``label`` [N], ``u``/``v`` [N,H,W] local coordinates."""
    rho2 = u * u + v * v
    candidates = torch.stack(
        [
            rho2 <= 1.0,
            torch.maximum(u.abs(), v.abs()) <= _SQUARE_HALF_SIDE,
            _regular_polygon(u, v, 3, _TRIANGLE_CIRCUMRADIUS),
            ((u.abs() <= _CROSS_HALF_WIDTH) & (v.abs() <= 1.0))
            | ((v.abs() <= _CROSS_HALF_WIDTH) & (u.abs() <= 1.0)),
            _star(u, v),
            (rho2 <= 1.0) & (rho2 >= _RING_INNER**2),
        ]
    )  # [K,N,H,W]
    index = label.view(1, -1, 1, 1).expand(1, *u.shape)
    return candidates.gather(0, index)[0]


def segment(x: torch.Tensor, y: torch.Tensor, p: torch.Tensor, q: torch.Tensor, half_width: torch.Tensor):
    """Thick line segment from ``p`` to ``q`` (each [N,2]) in pixel coordinates."""
    px, py = p[:, 0, None, None], p[:, 1, None, None]
    dx, dy = (q[:, 0] - p[:, 0])[:, None, None], (q[:, 1] - p[:, 1])[:, None, None]
    t = (((x - px) * dx + (y - py) * dy) / (dx * dx + dy * dy).clamp_min(1e-6)).clamp(0, 1)
    dist2 = (x - px - t * dx) ** 2 + (y - py - t * dy) ** 2
    return dist2 <= half_width[:, None, None] ** 2


def thin_ellipse(u: torch.Tensor, v: torch.Tensor, aspect: torch.Tensor) -> torch.Tensor:
    """Ellipse with semi-axes 1 and ``1/aspect`` (aspect ≥ 3, so it never reads as a disc)."""
    a = aspect[:, None, None]
    return u * u + (v * a) ** 2 <= 1.0


def open_arc(u: torch.Tensor, v: torch.Tensor, half_width: torch.Tensor, span: torch.Tensor):
    """Part of a unit circle's outline, ``span`` radians long (< π, so it never closes into a ring)."""
    rho = torch.sqrt(u * u + v * v)
    angle = torch.atan2(v, u).abs()
    return ((rho - 1).abs() <= half_width[:, None, None]) & (angle <= span[:, None, None] / 2)
