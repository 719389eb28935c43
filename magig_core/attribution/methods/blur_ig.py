"""Blur IG (Xu et al. 2020): integrate along a path that blurs the image away with a growing Gaussian.

The path runs from the image blurred with σ = max_sigma (index 0) to the image itself (σ = 0). Its
attribution is −Σ_i (σ_{i+1} − σ_i) · ∂x/∂σ(σ_i) ⊙ ∇F(x(σ_i)), with ∂x/∂σ taken as a forward difference
of step ``grad_step`` and the gradient at the point nearer the input, exactly as PAIR's ``saliency``
library computes it (its ``steps`` intervals are our ``steps − 1``: we count path points). The blur is
scipy's ``gaussian_filter`` (kernel truncated at 4σ, zero padding) applied per channel in the
classifier's normalized space, where every path of this package lives. Points are independent, so
they are evaluated many at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.integrator import frame_positions
from magig_core.attribution.model import chunks, gradient_pass, objective_values, target_probabilities
from magig_core.attribution.path_record import PathRecord
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput

TRUNCATE = 4.0  # kernel radius in standard deviations, as scipy.ndimage.gaussian_filter


@dataclass(frozen=True)
class BlurIGOptions:
    """PAIR's defaults (Blur IG is not in the paper), with ``steps`` counting path points like every method."""

    steps: int = 200  # path points, from the most blurred image to the input
    max_sigma: float = 50.0  # blur of the path's start, in pixels
    grad_step: float = 0.01  # forward-difference step for ∂x/∂σ
    sqrt: bool = False  # σ_i = sqrt(i·max_sigma/(steps−1)), as PAIR: the most blurred σ is then √max_sigma

    def __post_init__(self) -> None:
        check.check_steps(self.steps)
        check.check_positive(self.max_sigma, "blur_ig_max_sigma")
        check.check_positive(self.grad_step, "blur_ig_grad_step")


def sigmas(options: BlurIGOptions) -> list[float]:
    """σ_i for i = 0 … steps − 1, from the input (σ = 0) to the most blurred image."""
    intervals = options.steps - 1
    ramp = [i * options.max_sigma / intervals for i in range(intervals + 1)]
    return [math.sqrt(value) for value in ramp] if options.sqrt else ramp


def blur_matrix(length: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """[length, length] matrix of a 1-D Gaussian filter with zero padding (identity for σ = 0)."""
    radius = int(TRUNCATE * sigma + 0.5)
    if sigma == 0 or radius == 0:
        return torch.eye(length, dtype=like.dtype, device=like.device)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    index = torch.arange(length)
    offset = index.view(1, -1) - index.view(-1, 1)  # column minus row: the tap that row reads there
    inside = offset.abs() <= radius
    matrix = torch.where(inside, kernel[(offset + radius).clamp(0, 2 * radius)], torch.zeros(()))
    return matrix.to(dtype=like.dtype, device=like.device)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur [B,C,H,W] images along H and W only (each channel on its own)."""
    rows = blur_matrix(images.shape[-2], sigma, images)
    cols = blur_matrix(images.shape[-1], sigma, images)
    return torch.einsum("hi,bcij,wj->bchw", rows, images, cols)


def run(ctx: MethodInputs, options: BlurIGOptions) -> MethodOutput:
    """Walk from the input (σ = 0) outwards; the record turns the walk into baseline-to-input order."""
    scales = sigmas(options)
    n = options.steps
    inputs = ctx.inputs.detach()
    wanted = frame_positions(n, ctx.frames)
    record = PathRecord(n, wanted, reverse=True, watch=ctx.watch)
    probs: list[torch.Tensor | None] = [None] * n  # by σ index: 0 is the input
    with ctx.phase("path"), torch.enable_grad():
        for chunk in chunks(n - 1, ctx.points_per_chunk):
            with torch.no_grad():
                points = torch.stack([gaussian_blur(inputs, scales[i]) for i in chunk])
                slopes = torch.stack([(gaussian_blur(inputs, scales[i] + options.grad_step) - points[k])
                                      / options.grad_step for k, i in enumerate(chunk)])
            flat = points.flatten(0, 1).requires_grad_(True)
            result = gradient_pass(ctx.model, flat, ctx.targets.repeat(len(chunk)), ctx.objective, [flat])
            grads = result.grads[0].view_as(points)
            for k, i in enumerate(chunk):
                record.visit(grads[k], lambda point=points[k]: ctx.model.denormalize(point))
                record.collect(-(scales[i + 1] - scales[i]) * slopes[k] * grads[k])
                probs[i] = result.probs.view(len(chunk), -1)[k]
            ctx.report(chunk.stop, n - 1)
        start = gaussian_blur(inputs, scales[-1])
        start_logits, start_grad = ctx.endpoint(start, record.needs_gradient(n - 1))
        record.visit(start_grad, lambda: ctx.model.denormalize(start))
    probs[-1] = target_probabilities(start_logits, ctx.targets)
    recorded = record.finish()
    frames = [ctx.model.denormalize(gaussian_blur(inputs, scales[n - 1 - p])) for p in wanted.tolist()]
    return MethodOutput(
        attributions=recorded.attribution, path_probs=torch.stack(probs[::-1], dim=1),
        path_start_output=objective_values(start_logits, ctx.targets, ctx.objective),
        path_end_output=ctx.input_output,
        frames=torch.stack(frames, dim=1) if frames else None, frame_indices=wanted if frames else None,
        segment_sums=recorded.segment_sums, segment_mass=recorded.segment_mass,
        gradient_frames=recorded.gradient_frames, contribution_frames=recorded.contribution_frames,
    )


def cost(options: BlurIGOptions, num_classes: int) -> PassCounts:
    return PassCounts(classifier_forward=options.steps, classifier_backward=options.steps - 1)


SPEC = register(MethodSpec(
    name="blur-ig", label="Blur IG", hint="path that blurs the image away (Gaussian scale space)",
    color="#17becf", paper_order=4.5, space="pixels", has_path=True, has_frames=True, options=BlurIGOptions,
    run=run, cost=cost, aliases=("blurig",), shared_options=frozenset({"steps"}), keyword_prefix="blur_ig_",
    uses_baseline=False,
))
