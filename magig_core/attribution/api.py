"""``explain``: one entry point for every registered attribution method, on a batch of [0,1] images."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from magig_core import runtime
from magig_core.attribution import methods as _methods  # noqa: F401 - importing registers the methods
from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs, ProgressCallback, build_context
from magig_core.attribution.path_record import PathSnapshot, WatchFn
from magig_core.attribution.perturbations import noisy_copies, point_counts, resolve_perturbation
from magig_core.attribution.registry import MethodSpec, all_methods, check_keywords, method_names, method_spec
from magig_core.attribution.result import Explanation, MethodOutput
from magig_core.attribution.spaces import Autoencoder
from magig_core.errors import ArgumentError
from magig_core.metrics.stability import stability as stability_of

METHODS: tuple[str, ...] = method_names()
UNBATCHED = frozenset({"frame_indices"})  # Explanation tensors whose first axis is not the batch

runtime.remember_torch_threads()

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
    stability: int = 0,
    average: int = 1,
    perturbation: str = "auto",
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
    shared = {"autoencoder": autoencoder, "objective": objective, "frames": frames, "baseline": baseline,
              "references": references, "chunk_size": chunk_size, "precision": precision, "seed": seed,
              "callback": callback, "normalization": normalization, "substeps": substeps, "watch": watch}
    explanation = _explain_runs(spec, options, check.check_images(images), classifier, targets, shared,
                                stability=stability, average=average, perturbation=perturbation)
    explanation.timings["total"] = time.perf_counter() - started
    return explanation


def _explain_runs(spec: MethodSpec, options: Any, images: torch.Tensor, classifier: nn.Module, targets: Any,
                  shared: dict[str, Any], *, stability: int, average: int, perturbation: str) -> Explanation:
    """The plain run, or the perturbed runs behind ``stability`` and ``average``, on the work-sized threads."""
    groups = max(1, check.check_nonnegative_int(stability, "stability"))
    average = check.check_positive_int(average, "average")
    kind = resolve_perturbation(spec, perturbation) if groups * average > 1 else None
    lockstep = groups * average if kind == "noise" else 1
    with runtime.library_threads(lockstep * math.prod(images.shape[0:1] + images.shape[2:])):
        if kind is None:
            return _run(spec, options, images, classifier, targets, shared)
        runs = _repeated_runs(spec, options, kind, images, classifier, targets, shared, groups * average)
        return _combined(runs, kind, groups, average)


def _explanation(spec: MethodSpec, ctx: MethodInputs, options: Any, output: MethodOutput, *,
                 targets_given: bool, precision: str) -> Explanation:
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


def _run(spec: MethodSpec, options: Any, images: torch.Tensor, classifier: nn.Module, targets: Any,
         shared: dict[str, Any]) -> Explanation:
    """One plain run of the method."""
    ctx = build_context(images, classifier, targets=targets, **shared)
    output = spec.run(ctx, options)
    return _explanation(spec, ctx, options, output, targets_given=targets is not None,
                        precision=shared["precision"])


def _repeated_runs(spec: MethodSpec, options: Any, kind: str, images: torch.Tensor, classifier: nn.Module,
                   targets: Any, shared: dict[str, Any], count: int) -> list[Explanation]:
    """``count`` runs under the perturbation ``kind``; run 0 is the plain call."""
    callback = shared["callback"]
    if kind == "points":
        runs: list[Explanation] = []
        for r, points in enumerate(point_counts(options.steps, count)):
            progress = None if callback is None else _run_progress(callback, r, count)
            chosen = targets if r == 0 else runs[0].targets
            watch = shared["watch"] if r == 0 else None  # live maps follow the plain run
            runs.append(_run(spec, dataclasses.replace(options, steps=points), images, classifier, chosen,
                             {**shared, "callback": progress, "watch": watch}))
            runs[r].config["targets_given"] = targets is not None
        return runs
    rows = images.shape[0]
    batch = noisy_copies(images, count, shared["seed"])
    lockstep = {**shared, "baseline": _repeat_rows(shared["baseline"], rows, count),
                "watch": _first_rows_watch(shared["watch"], rows),
                "references": images if spec.draws_references and shared["references"] is None
                else shared["references"]}
    ctx = build_context(batch, classifier, targets=_repeat_rows(targets, rows, count), **lockstep)
    if targets is None:  # every copy explains the class predicted for the clean image
        ctx.targets = ctx.targets[:rows].repeat(count)
    output = spec.run(ctx, options)
    together = _explanation(spec, ctx, options, output, targets_given=targets is not None,
                            precision=shared["precision"])
    return [_rows(together, slice(r * rows, (r + 1) * rows)) for r in range(count)]


def _first_rows_watch(watch: WatchFn | None, rows: int) -> WatchFn | None:
    """A watcher of the lockstep batch that sees only the plain run's rows (copy 0)."""
    if watch is None:
        return None

    def first_rows(snapshot: PathSnapshot) -> None:
        cut = {item.name: getattr(snapshot, item.name) for item in dataclasses.fields(snapshot)}
        for name in ("image", "gradient", "partial", "collected"):
            cut[name] = None if cut[name] is None else cut[name][:rows]
        watch(PathSnapshot(**cut))

    return first_rows


def _run_progress(callback: ProgressCallback, run: int, runs: int) -> ProgressCallback:
    return lambda done, total: callback(run * total + done, runs * total)


def _repeat_rows(value: Any, rows: int, count: int) -> Any:
    """Per-image values (targets, a baseline batch) repeated for ``count`` copies of the batch; a value
    shared by all images (a one-image baseline, one class) or of a wrong length (build_context says so)
    passes unchanged."""
    if value is None:
        return None
    tensor = torch.as_tensor(value)
    if tensor.dim() == 0:
        tensor = tensor.expand(rows)
    if tensor.shape[0] != rows:
        return value
    return tensor.repeat(count, *([1] * (tensor.dim() - 1)))


def _rows(explanation: Explanation, rows: slice) -> Explanation:
    """The explanation of a slice of the batch (every batch-first tensor cut to it)."""
    total = int(explanation.targets.shape[0])
    cut = {}
    for item in dataclasses.fields(explanation):
        value = getattr(explanation, item.name)
        if (isinstance(value, torch.Tensor) and item.name not in UNBATCHED and value.dim() > 0
                and value.shape[0] == total):
            value = value[rows]
        cut[item.name] = value
    cut["config"] = dict(explanation.config)
    cut["timings"] = dict(explanation.timings)
    return Explanation(**cut)


def _combined(runs: list[Explanation], kind: str, groups: int, average: int) -> Explanation:
    """Run 0's path diagnostics with the mean map of runs 0 … average−1, and the groups' agreement.

    The K runs form ``groups`` disjoint averages of ``average`` runs each; stability compares those
    averages, so asking for stability never changes the returned map.
    """
    first = runs[0]
    stacked = torch.stack([run.attributions for run in runs])
    means = stacked.view(groups, average, *stacked.shape[1:]).mean(dim=1)
    attributions = means[0]
    residual = (attributions.flatten(1).sum(dim=1) - (first.input_output - first.baseline_output)).abs()
    timings: dict[str, float] = {}
    for run in runs if kind == "points" else runs[:1]:
        for phase, seconds in run.timings.items():
            timings[phase] = timings.get(phase, 0.0) + seconds
    config = {**first.config, "perturbation": kind, "average": average, "stability_runs": groups}
    if kind == "points":
        config["point_counts"] = [run.config["steps"] for run in runs]
    changes: dict[str, Any] = {"attributions": attributions, "completeness_residual": residual,
                               "timings": timings, "config": config}
    if average > 1:  # segment shares belong to one path, not to a mean of several
        changes["segment_sums"] = None
    if groups > 1:
        agreement = stability_of(means)
        changes.update(stability=agreement.iou.to(attributions.dtype),
                       stability_rank=agreement.rank.to(attributions.dtype),
                       agreement=agreement.agreement.to(attributions.dtype))
    return dataclasses.replace(first, **changes)


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

stability: K ≥ 2 re-runs the method K times under small perturbations that keep its definition and
adds ``stability`` [B] (mean pairwise IoU of the maps' top-10 % pixels), ``stability_rank`` [B] (mean
pairwise Spearman correlation) and ``agreement`` [B,H,W] (share of the K maps with the pixel in their
top 10 %); the returned map is unchanged. average: the map is the mean of ``average`` perturbed runs
(with ``stability`` too, each of the K compared maps is such a mean, of disjoint runs). perturbation:
"points" (path points N, N−1, …: methods with a point count, runs one after another), "noise" (input
noise of one 8-bit level, all runs batched in lockstep) or "auto" (points where the method has them).
Run 0 is always the plain call; path diagnostics describe it (see ``attribution.perturbations``).

Threads: unless the app or CLI configured them, or you changed ``torch.set_num_threads`` after importing
this package, a call uses the work-sized plan of ``magig_core.runtime`` (one thread per 64×64 pixels
of a pass under the passive wait policy) and restores torch's count afterwards.

Method options (paper defaults), as keywords; ``steps``, ``fraction``, ``interpolation`` and
``schedule`` go to whichever method has that option, and a prefixed name (``ig2_step_size``) also works:
{_method_options_doc()}
"""
