"""``explain``: one entry point for every registered attribution method, on a batch of [0,1] images."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from magig_core.attribution import methods as _methods  # noqa: F401 - importing registers the methods
from magig_core.attribution.context import MethodInputs, ProgressCallback, build_context
from magig_core.attribution.path_record import WatchFn
from magig_core.attribution.registry import MethodSpec, all_methods, check_keywords, method_names, method_spec
from magig_core.attribution.result import Explanation, MethodOutput
from magig_core.attribution.spaces import Autoencoder
from magig_core.errors import ArgumentError

METHODS: tuple[str, ...] = method_names()

__all__ = ["METHODS", "explain"]


def explain(
    images: torch.Tensor,
    classifier: nn.Module,
    method: str = "ma-gig",
    *,
    autoencoder: Autoencoder | None = None,
    targets: torch.Tensor | list[int] | int | None = None,
    steps: int | None = None,
    fraction: float | None = None,
    interpolation: str | None = None,
    objective: str = "prob",
    frames: int = 0,
    baseline: torch.Tensor | None = None,
    schedule: str | None = None,
    references: torch.Tensor | None = None,
    chunk_size: int | None = None,
    precision: str = "fp32",
    seed: int = 0,
    callback: ProgressCallback | None = None,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    substeps: int = 1,
    watch: WatchFn | None = None,
    **method_options: Any,
) -> Explanation:
    started = time.perf_counter()
    spec = method_spec(method)
    check_keywords(method_options)
    options = spec.make_options({"steps": steps, "fraction": fraction, "interpolation": interpolation,
                                 "schedule": schedule, **method_options})
    if spec.needs_autoencoder and autoencoder is None:
        raise ArgumentError(f"{spec.name} builds its path in an autoencoder's latent space: pass "
                            "autoencoder=load_autoencoder(...) (e.g. 'taef2' offline, 'sd2', 'mar', 'taesd')")
    ctx = build_context(images, classifier, autoencoder=autoencoder, targets=targets, objective=objective,
                        frames=frames, baseline=baseline, references=references, chunk_size=chunk_size,
                        precision=precision, seed=seed, callback=callback, normalization=normalization,
                        substeps=substeps, watch=watch)
    output = spec.run(ctx, options)
    ctx.timings["total"] = time.perf_counter() - started
    return _explanation(spec, ctx, options, output, targets_given=targets is not None, precision=precision)


def _explanation(spec: MethodSpec, ctx: MethodInputs, options: Any, output: MethodOutput, *, targets_given: bool,
                 precision: str) -> Explanation:
    """The method's output plus what every method shares; completeness against the raw images."""
    baseline_output = ctx.baseline_output if spec.uses_baseline else output.path_start_output
    residual = (output.attributions.flatten(1).sum(dim=1) - (ctx.input_output - baseline_output)).abs()
    config = {"method": spec.name, "objective": ctx.objective, "targets_given": targets_given,
              "precision": precision, **dataclasses.asdict(options), **output.details,
              "nonfinite_gradients": output.nonfinite_gradients}
    return Explanation(
        method=spec.name, attributions=output.attributions.detach(), targets=ctx.targets,
        path_probs=output.path_probs, input_output=ctx.input_output, baseline_output=baseline_output,
        input_logits=ctx.input_logits, completeness_residual=residual,
        path_start_output=output.path_start_output, path_end_output=output.path_end_output,
        frames=output.frames, frame_indices=output.frame_indices, path_outputs=output.path_outputs,
        segment_sums=output.segment_sums, segment_mass=output.segment_mass,
        gradient_frames=output.gradient_frames, contribution_frames=output.contribution_frames,
        timings=dict(ctx.timings), config=config,
    )


def _method_options_doc() -> str:
    lines = []
    for spec in all_methods():
        fields = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(spec.options)) or "no options"
        prefixed = f" (also as {spec.keyword_prefix}<option>)" if spec.keyword_prefix else ""
        lines.append(f"    {spec.name} ({spec.label}, {spec.hint}): {fields}{prefixed}")
    return "\n".join(lines)


explain.__doc__ = f"""Attribute each image's target-class score to its input elements.

images: float [B,3,H,W] in [0,1]. classifier: any module mapping such images to logits (a zoo
classifier's own normalization is honoured; all path geometry lives in its normalized space).
method: a registered method's name or alias. autoencoder: anything with differentiable
``encode``/``decode`` on [0,1] images (latent methods). targets: class per image (default: the
predicted class). objective: "prob" (softmax, the paper's) or "logit". frames: number of evenly spaced
path images to return. baseline: [0,1] images (default black). references: IG2's reference bank of
[0,1] images (default: the batch). chunk_size: rows per batched network pass. precision: "fp32"
(default, reproduces the paper), "bf16" or "fp16" (CUDA only) autocast for the networks; the path rule
stays fp32. seed: IG2's reference draw. callback(done, total) is called as the path advances; an
exception raised from it aborts the run (cancellation). normalization: (mean, std) per channel for a
plain module that normalizes inside its forward, so that the paths' geometry lives in its normalized
space as the paper's does (a zoo classifier or ``ImageClassifier`` carries its own; without either, the
input is taken as already normalized and a warning says so). substeps: gradients per path segment (1,
the default, is the paper's left-point rule; k > 1 keeps the path and averages the gradient over k
points of each pixel segment, k − 1 extra classifier passes per segment, for a smaller residual).
watch(snapshot) is called while the path is walked, at each of the ``frames`` shown positions, with the
running attribution map, the path image and gradient there and the signed sum collected so far
(``PathSnapshot``); the last call's map is the returned attribution.

Method options (paper defaults), as keywords; ``steps``, ``fraction``, ``interpolation`` and
``schedule`` go to whichever method has that option, and a prefixed name (``ig2_step_size``) also works:
{_method_options_doc()}
"""
