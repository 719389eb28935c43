"""Turn a run's results into what a viewer shows: captioned maps, frames at a path position, plots, a table.

Front ends (the Gradio app, notebooks, report scripts) call these so that they all show the same pictures
and numbers; nothing here touches a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from magig_core.explorer.compute import MethodResult, RunContext
from magig_core.metrics.definitions import METRICS
from magig_core.viz import Curve, heatmap, maps_figure, overlay, path_figure, robust_max, saliency

MAP_STYLES = ("heatmap", "overlay")
MAP_SCALES = ("per method", "shared")  # per method: each map to its own 99.5th percentile
Captioned = tuple[np.ndarray, str]

METRICS_CAPTION = ("Metrics per method for the explained class on this image. Top-1: does the classifier still "
                   "pick the class when only the most important 10–90 % of the input is kept (Insertion) / "
                   "removed (Deletion), the rest set to the mean, as in the paper's tables; p: the class's "
                   "mean probability in the same games. DiffID = Insertion − Deletion.")
SIGNIFICANT_DIGITS = 4  # small probabilities (a class that is not the prediction) keep their differences


def map_scales(results: Sequence[MethodResult], scale: str) -> list[float]:
    """The colour-scale maximum of every map: one shared value, or each map's own."""
    maps = [saliency(r.attributions) for r in results]
    if scale == "shared":
        return [robust_max(maps)] * len(maps)
    return [robust_max([m]) for m in maps]


def method_maps(context: RunContext, results: Sequence[MethodResult], *, style: str = "heatmap",
                scale: str = "per method") -> list[Captioned]:
    """One uint8 picture per method with a caption carrying its run time and completeness residual."""
    pictures = []
    for result, vmax in zip(results, map_scales(results, scale), strict=True):
        sal = saliency(result.attributions)
        image = overlay(context.image, sal, vmax) if style == "overlay" else heatmap(sal, vmax)
        residual = result.scores["completeness_residual"]
        scored = "scoring…" if result.pending else f"residual {residual:.3g}"
        pictures.append((image, f"{result.label} · {result.seconds:.1f} s · {scored}"))
    return pictures


def agreement_maps(results: Sequence[MethodResult]) -> list[Captioned]:
    """Per method with a stability measurement, how often each pixel was among the top 10 % of the perturbed
    runs (black: never, white: every run), captioned with the stability IoU."""
    pictures = []
    for result in results:
        if result.agreement is not None:
            stable = result.scores["stability_iou"]
            score = "scoring…" if result.pending else f"stability IoU {stable:.2f}"
            pictures.append((heatmap(result.agreement, 1.0, cmap="gray"), f"{result.label} · {score}"))
    return pictures


def frames_at(context: RunContext, results: Sequence[MethodResult], t: float) -> list[Captioned]:
    """Each path method's path image nearest to position t, captioned with its target probability."""
    pictures = []
    for result in results:
        index = result.frame_at(t)
        if index is None:
            continue
        caption = (f"{result.label} · t={result.frame_t[index]:.2f} · "
                   f"p({context.target_name})={result.frame_probs[index]:.2f}")
        pictures.append((result.frames[index], caption))
    return pictures


def path_methods(results: Sequence[MethodResult]) -> list[MethodResult]:
    """The methods whose path images can be scrubbed."""
    return [r for r in results if r.frame_t is not None]


def confidence_figure(context: RunContext, results: Sequence[MethodResult], marker: float | None = None) -> Figure:
    curves = [Curve(r.method, r.label, r.path_t, r.path_probs, r.scores["confidence_auc"])
              for r in results if len(r.path_t) > 1]  # AGI has probabilities along its path but no frames
    return path_figure(curves, title=f"Confidence in '{context.target_name}' along the path",
                       ylabel=f"p({context.target_name})", ylim=(0, 1.02), marker=marker)


def distance_label(context: RunContext) -> str:
    return "LPIPS" if context.distance_name.startswith("lpips") else "Pixel RMSE"


def distance_figure(context: RunContext, results: Sequence[MethodResult], marker: float | None = None) -> Figure:
    label = distance_label(context)
    curves = [Curve(r.method, r.label, r.frame_t, r.distances, r.scores["distance_auc"])
              for r in path_methods(results) if r.distances is not None]
    note = f"LPIPS unavailable: {context.distance_note}." if context.distance_note else None
    return path_figure(curves, title=f"{label} distance to the input", ylabel=f"{label} to input",
                       marker=marker, note=note, auc_better="lower")


def manifold_figure(context: RunContext, results: Sequence[MethodResult], marker: float | None = None) -> Figure:
    """Each path image's distance to its own autoencoder reconstruction: how far off the image manifold it is."""
    label = distance_label(context)
    curves = [Curve(r.method, r.label, r.frame_t, r.off_manifold, r.scores["off_manifold_auc"])
              for r in path_methods(results) if r.off_manifold is not None]
    psnr = context.reconstruction_psnr
    note = (f"The autoencoder reconstructs the input at {psnr:.1f} dB PSNR: distances near the input's own "
            "are as close to its manifold as the photograph." if psnr is not None else None)
    return path_figure(curves, title="Off-manifold: distance to own reconstruction",
                       ylabel=f"{label}(image, D(E(image)))", marker=marker, note=note, auc_better="lower")


def accumulation_figure(context: RunContext, results: Sequence[MethodResult], marker: float | None = None) -> Figure:
    """The share of each map's absolute contribution mass collected up to each path position, with t50; the
    area under a curve is 1 − the mass-weighted mean position, so a large area means an early map."""
    curves = [Curve(r.method, f"{r.label} · t50 {r.scores['t50']:.2f}", r.path_t, r.accumulation_mass,
                    float(np.trapezoid(r.accumulation_mass, r.path_t)))
              for r in results if r.accumulation_mass is not None]
    return path_figure(curves, title="Where along the path the map is collected", ylabel="share of Σ|g ⊙ Δx| so far",
                       ylim=(0, 1.02), marker=marker, auc_better="")


def metrics_table(context: RunContext, results: Sequence[MethodResult]) -> tuple[list[str], list[list]]:
    """Headers and one row per method: every metric of the list that some method of this run has a value for
    (a column that would be empty for all, such as a mask's or one asked for elsewhere, is left out)."""
    shown = [m for m in METRICS if any(math.isfinite(r.scores[m.name]) for r in results)]
    headers = ["Method"] + [m.column(distance_label(context)) for m in shown] + ["Seconds"]
    rows = [[r.label] + [_rounded(r.scores[m.name]) for m in shown] + [_rounded(r.seconds)] for r in results]
    return headers, rows


def export_figure(context: RunContext, results: Sequence[MethodResult]) -> Figure:
    """Input and all maps on the shared colour scale with a colour bar, for slides and papers."""
    maps = [saliency(r.attributions) for r in results]
    return maps_figure(context.image, maps, [r.label for r in results], robust_max(maps))


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else float(f"{value:.{SIGNIFICANT_DIGITS}g}")
