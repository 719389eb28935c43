"""IG and EIG: the straight line (or slerp) from baseline to input, in pixel or latent coordinates.

Path points are independent, so they are evaluated many at a time: a chunk of points for all B images
goes through the decoder (no graph needed) and the classifier as one batch, with one backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from magig_core.attribution.context import MethodInputs
from magig_core.attribution.guided import slerp_vectors
from magig_core.attribution.integrator import PathIntegrator
from magig_core.attribution.model import chunks, gradient_pass

ImagesAt = Callable[[range], torch.Tensor]  # path indices -> normalized images [len, B, C, H, W]


def integrate_points(ctx: MethodInputs, num_points: int, images_at: ImagesAt) -> PathIntegrator:
    """Left-point Riemann sum over points produced chunk by chunk, in path order."""
    integrator = ctx.path_integrator(num_points)
    rows = ctx.batch_size
    repeated_targets = None
    with torch.enable_grad():
        for indices in chunks(num_points, ctx.points_per_chunk):
            with torch.no_grad():
                images = images_at(indices)
            flat = images.reshape(len(indices) * rows, *images.shape[2:]).requires_grad_(True)
            if repeated_targets is None or repeated_targets.shape[0] != flat.shape[0]:
                repeated_targets = ctx.targets.repeat(len(indices))
            result = gradient_pass(ctx.model, flat, repeated_targets, ctx.objective, [flat])
            grads = result.grads[0].view_as(images)
            probs = result.probs.view(len(indices), rows)
            outputs = result.outputs.view(len(indices), rows)
            for offset in range(len(indices)):
                integrator.add(images[offset], outputs[offset], probs[offset], grads[offset])
            ctx.report(indices.stop, num_points)
    return integrator


def straight_path(ctx: MethodInputs, space, *, steps: int, interpolation: str) -> PathIntegrator:
    """p_k = decode(start + k/(N−1)·(end − start)); the pixel line ends exactly at the input."""
    with ctx.phase("encode"):
        start = space.encode(ctx.baseline01)
        end = space.encode(ctx.inputs01)
    rows = ctx.batch_size
    alphas = torch.arange(steps, dtype=start.dtype, device=start.device) / (steps - 1)

    def images_at(indices: range) -> torch.Tensor:
        points = [end if i == steps - 1 else _interpolate(start, end, alphas[i], interpolation, rows)
                  for i in indices]
        coords = torch.stack(points)
        decoded = space.decode(coords.reshape(len(indices) * rows, *start.shape[1:]))
        return decoded.reshape(len(indices), rows, *decoded.shape[1:])

    with ctx.phase("path"):
        return integrate_points(ctx, steps, images_at)


def _interpolate(start: torch.Tensor, end: torch.Tensor, alpha: torch.Tensor, mode: str, rows: int) -> torch.Tensor:
    if mode == "lerp":
        return start + alpha * (end - start)
    flat = slerp_vectors(start.reshape(rows, -1), end.reshape(rows, -1), alpha.expand(rows))
    return flat.view_as(start)
