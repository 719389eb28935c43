"""``explain``: one entry point for every attribution method, on a batch of [0,1] images."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from magig_core.attribution import validation as check
from magig_core.attribution.agi import agi_attribution
from magig_core.attribution.context import Context
from magig_core.attribution.geodesic_path import SWEEPS, geodesic_images
from magig_core.attribution.guided_path import SCHEDULES, guided_path
from magig_core.attribution.ig2 import ig2_path
from magig_core.attribution.integrator import PathIntegrator
from magig_core.attribution.model import model_device, objective_values, target_probabilities, wrap_classifier
from magig_core.attribution.result import Explanation
from magig_core.attribution.spaces import LatentSpace, PixelSpace
from magig_core.attribution.straight_path import integrate_points, straight_path
from magig_core.attribution.validation import LATENT_METHODS, METHODS

__all__ = ["METHODS", "explain"]


def explain(
    images: torch.Tensor,
    classifier: nn.Module,
    method: str = "ma-gig",
    *,
    autoencoder=None,
    targets: torch.Tensor | list[int] | int | None = None,
    steps: int | None = None,
    fraction: float | None = None,
    interpolation: str = "lerp",
    objective: str = "prob",
    frames: int = 0,
    baseline: torch.Tensor | None = None,
    schedule: str = "paper",
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
    precision: str = "fp32",
    seed: int = 0,
    callback: Callable[[int, int], None] | None = None,
) -> Explanation:
    """Attribute each image's target-class score to its input elements.

    images: float [B,3,H,W] in [0,1]. classifier: any module mapping such images to logits (a zoo
    classifier's own normalization is honoured; all path geometry lives in its normalized space).
    autoencoder: anything with differentiable ``encode``/``decode`` on [0,1] images (latent methods).
    targets: class per image (default: the predicted class). steps: path points N (default 200; IG2's
    search steps T, default 201). fraction: share of coordinates moved per guided inner step (GIG 0.1,
    MA-GIG 0.05). interpolation: "lerp" or "slerp" (MA-GIG partial moves, EIG path). objective:
    "prob" (softmax, the paper's) or "logit". frames: number of evenly spaced path images to return.
    baseline: [0,1] images (default black). schedule: "paper" (the tables' guided schedule) or "pair"
    (PAIR's Guided IG schedule). references: IG2's reference bank of [0,1] images (default: the batch).
    mig_sweep: "gauss-seidel" (the reference's sequential update) or "jacobi" (parallel, a different
    algorithm). chunk_size: rows per batched network pass. precision: "fp32" (default, reproduces
    the paper), "bf16" or "fp16" (CUDA only) autocast for the networks; the path rule stays fp32. callback(done, total) is called as the path
    advances; an exception raised from it aborts the run (cancellation).
    """
    started = time.perf_counter()
    name = check.canonical_method(method)
    images = check.check_images(images)
    device = model_device(classifier, images.device)
    images = images.to(device)
    dtype = images.dtype
    baseline01 = _resolve_baseline(baseline, images)
    objective = check.check_choice(objective, ("prob", "logit"), "objective")
    interpolation = check.check_choice(interpolation, ("lerp", "slerp"), "interpolation")
    schedule = check.check_choice(schedule, SCHEDULES, "schedule")
    mig_sweep = check.check_choice(mig_sweep, SWEEPS, "mig_sweep")
    frames = check.check_nonnegative_int(frames, "frames")
    if name in LATENT_METHODS and autoencoder is None:
        raise ValueError(
            f"{name} builds its path in an autoencoder's latent space: pass autoencoder=load_autoencoder(...) "
            "(e.g. 'sd2', 'mar', 'taesd', or 'demo-shapes' offline)"
        )
    num_steps = check.check_steps(steps if steps is not None else check.DEFAULT_STEPS.get(name, 200), name)
    fraction = check.check_fraction(fraction if fraction is not None else check.DEFAULT_FRACTION.get(name, 0.1))
    chunk_rows = _chunk_rows(chunk_size, device)
    autocast_dtype = _autocast_dtype(precision, device)

    model = wrap_classifier(classifier, device=device, dtype=dtype, autocast_dtype=autocast_dtype)
    with torch.no_grad():
        logits = model.forward(model.normalize(torch.cat([images, baseline01])))
    input_logits, baseline_logits = logits.split(images.shape[0])
    num_classes = int(input_logits.shape[1])
    chosen = input_logits.argmax(dim=1) if targets is None else check.check_targets(targets, images.shape[0], num_classes, device)
    ctx = Context(
        model=model, inputs01=images, baseline01=baseline01, targets=chosen, objective=objective,
        chunk_rows=chunk_rows, input_probs=target_probabilities(input_logits, chosen), callback=callback,
    )
    input_output = objective_values(input_logits, chosen, objective)
    baseline_output = objective_values(baseline_logits, chosen, objective)
    config: dict[str, Any] = {
        "method": name, "objective": objective, "targets_given": targets is not None, "precision": precision,
    }

    frame_images = frame_indices = None
    nonfinite = 0
    if name == "gi":
        attributions, path_probs = _gradient_times_input(ctx)
    elif name == "agi":
        attributions = agi_attribution(
            ctx, iterations=check.check_nonnegative_int(agi_iterations, "agi_iterations"),
            epsilon=check.check_positive(agi_epsilon, "agi_epsilon"),
            num_negative=max(1, check.check_nonnegative_int(agi_negative_classes, "agi_negative_classes")),
            num_classes=num_classes,
        )
        path_probs = ctx.input_probs.unsqueeze(1)
        baseline_output = torch.full_like(input_output, float("nan"))
        config.update(iterations=agi_iterations, epsilon=agi_epsilon, negative_classes=agi_negative_classes)
    elif name == "ig2":
        bank = _reference_bank(references, images, device, dtype)
        generator = torch.Generator().manual_seed(seed)
        attributions, path_probs, baseline_output, frame_images, frame_indices = ig2_path(
            ctx, steps=num_steps, step_size=check.check_positive(ig2_step_size, "ig2_step_size"),
            references01=bank, generator=generator, frames=frames,
        )
        config.update(steps=num_steps, step_size=ig2_step_size, seed=seed, reference_bank_size=len(bank))
    else:
        integrator = _path_method(
            ctx, name, autoencoder, dtype, num_steps, fraction, interpolation, schedule, frames,
            mig=(mig_learning_rate, mig_iterations, mig_energy_threshold, mig_sweep),
        )
        attributions = integrator.attribution()
        path_probs = integrator.path_probs()
        frame_images, frame_indices = integrator.frames(), integrator.frame_indices
        nonfinite = integrator.nonfinite_gradients
        config.update(steps=num_steps, interpolation=interpolation)
        if name in ("gig", "ma-gig"):
            config.update(fraction=fraction, schedule=schedule)
        if name == "mig":
            config.update(learning_rate=mig_learning_rate, iterations=mig_iterations,
                          energy_threshold=mig_energy_threshold, sweep=mig_sweep)
    config["nonfinite_gradients"] = nonfinite
    if frame_images is None:
        frame_indices = None
    residual = (attributions.flatten(1).sum(dim=1) - (input_output - baseline_output)).abs()
    ctx.timings["total"] = time.perf_counter() - started
    return Explanation(
        method=name, attributions=attributions.detach(), targets=chosen, path_probs=path_probs,
        input_output=input_output, baseline_output=baseline_output, input_logits=input_logits,
        completeness_residual=residual, frames=frame_images, frame_indices=frame_indices,
        timings=dict(ctx.timings), config=config,
    )


def _path_method(ctx, name, autoencoder, dtype, steps, fraction, interpolation, schedule, frames, *, mig) -> PathIntegrator:
    space = PixelSpace(ctx.model) if name in ("ig", "gig") else LatentSpace(ctx.model, autoencoder, dtype)
    if name in ("gig", "ma-gig"):
        return guided_path(ctx, space, steps=steps, fraction=fraction, interpolation=interpolation,
                           schedule=schedule, frames=frames)
    if name in ("ig", "eig"):
        return straight_path(ctx, space, steps=steps, interpolation=interpolation, frames=frames)
    learning_rate, iterations, threshold, sweep = mig
    images = geodesic_images(
        ctx, space, steps=steps, learning_rate=check.check_positive(learning_rate, "mig_learning_rate"),
        iterations=check.check_nonnegative_int(iterations, "mig_iterations"), energy_threshold=threshold, sweep=sweep,
    )
    with ctx.phase("integrate"):
        return integrate_points(ctx, steps, lambda indices: torch.stack([images[i] for i in indices]), frames)


def _gradient_times_input(ctx: Context) -> tuple[torch.Tensor, torch.Tensor]:
    """GI: ∇F_c(x) ⊙ (x − x_baseline), both in normalized space."""
    with ctx.phase("path"), torch.enable_grad():
        point = ctx.inputs.detach().requires_grad_(True)
        values = objective_values(ctx.model.forward(point), ctx.targets, ctx.objective)
        grad = torch.autograd.grad(values.sum(), point)[0]
    return grad * (ctx.inputs - ctx.baseline), ctx.input_probs.unsqueeze(1)


def _resolve_baseline(baseline: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(images)
    baseline = check.check_images(baseline, "baseline").to(device=images.device, dtype=images.dtype)
    if baseline.shape[1:] != images.shape[1:] or baseline.shape[0] not in (1, images.shape[0]):
        raise ValueError(f"baseline shape {tuple(baseline.shape)} does not match images {tuple(images.shape)}")
    return baseline.expand_as(images).contiguous()


def _reference_bank(references, images: torch.Tensor, device, dtype) -> torch.Tensor:
    if references is None:
        if images.shape[0] == 1:
            raise ValueError(
                "IG2 draws a reference image for each input: with a single image pass references=<[R,3,H,W] "
                "images in [0,1]> (e.g. other images of your dataset)"
            )
        return images
    bank = check.check_images(references, "references").to(device=device, dtype=dtype)
    if bank.shape[2:] != images.shape[2:]:
        raise ValueError(f"references must have the images' size {tuple(images.shape[2:])}; got {tuple(bank.shape[2:])}")
    return bank


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    check.check_choice(precision, ("fp32", "bf16", "fp16"), "precision")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' or 'fp32' on the CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _chunk_rows(chunk_size: int | None, device: torch.device) -> int:
    if chunk_size is None:
        return 64 if device.type == "cuda" else 16
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer (rows per batched pass); got {chunk_size!r}")
    return chunk_size
