"""Pictures of attributions and paths: heatmaps, overlays and matplotlib figures.

Everything returns uint8 arrays or ``matplotlib.figure.Figure`` objects built with the object-oriented API
(pyplot is global state and not thread-safe, and a web server draws figures from many threads).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from magig_core.attribution.registry import method_color

DEFAULT_CMAP = "inferno"
SCALE_PERCENTILE = 99.5  # clip the brightest 0.5 % so a few extreme elements do not wash out the map


def saliency(attributions: torch.Tensor | np.ndarray) -> np.ndarray:
    """[H,W] magnitude map from [3,H,W] attributions: sum of |A| over colour channels."""
    values = attributions.detach().cpu().numpy() if isinstance(attributions, torch.Tensor) else attributions
    return np.abs(np.asarray(values, dtype=np.float64)).sum(axis=0)


def robust_max(maps: Sequence[np.ndarray], percentile: float = SCALE_PERCENTILE) -> float:
    """One colour-scale maximum for several maps, so equal colours mean equal attribution everywhere."""
    peaks = [float(np.percentile(m, percentile)) for m in maps if m.size]
    peak = max(peaks, default=0.0)
    return peak if peak > 0 else 1.0


def heatmap(saliency_map: np.ndarray, vmax: float, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """uint8 [H,W,3] colour image of a saliency map on the fixed scale [0, vmax]."""
    normalized = np.clip(saliency_map / vmax, 0.0, 1.0)
    rgba = colormaps[cmap](normalized)
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def overlay(image: np.ndarray, saliency_map: np.ndarray, vmax: float, cmap: str = DEFAULT_CMAP,
            strength: float = 0.85) -> np.ndarray:
    """Heat blended over a dimmed input: colour only where attribution is high, the photo elsewhere."""
    weight = strength * np.clip(saliency_map / vmax, 0.0, 1.0)[..., None]
    base = image.astype(np.float64) * 0.6
    mixed = (1 - weight) * base + weight * heatmap(saliency_map, vmax, cmap)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def to_uint8(image01: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] from a [3,H,W] image in [0,1] (decoded frames may overshoot; they are clamped)."""
    values = image01.detach().float().cpu().numpy() if isinstance(image01, torch.Tensor) else image01
    return (np.clip(np.transpose(values, (1, 2, 0)), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


@dataclass
class Curve:
    method: str
    label: str
    t: np.ndarray
    values: np.ndarray
    auc: float


def path_figure(curves: Sequence[Curve], *, title: str, ylabel: str, ylim: tuple[float, float] | None = None,
                marker: float | None = None, note: str | None = None, auc_better: str = "higher") -> Figure:
    """One line per method along the normalized path position, its AUC in the legend.

    ``marker`` draws the current scrubber position; ``note`` is printed under the axes (e.g. which distance
    stands in for LPIPS and why); ``auc_better=""`` for a curve whose area is neither good nor bad.
    """
    figure = Figure(figsize=(7.2, 4.2), dpi=110)  # fixed margins: a layout engine doubles the drawing time
    figure.subplots_adjust(left=0.12, right=0.98, top=0.91, bottom=0.27 if note else 0.14)
    axes = figure.add_subplot()
    for curve in curves:
        area = "" if np.isnan(curve.auc) else f"  (AUC {curve.auc:.3f})"
        axes.plot(curve.t, curve.values, lw=2.6, color=method_color(curve.method), label=f"{curve.label}{area}")
    if marker is not None:
        axes.axvline(marker, color="black", lw=1.4, ls="--", alpha=0.7)
    axes.set_xlim(0, 1)
    if ylim is not None:
        axes.set_ylim(*ylim)
    axes.set_xlabel("path position t  (0 = baseline, 1 = input)", fontsize=13)
    axes.set_ylabel(ylabel, fontsize=13)
    axes.set_title(f"{title}   ({auc_better} AUC is better)" if auc_better else title, fontsize=14)
    axes.tick_params(labelsize=12)
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(fontsize=12, loc="best", framealpha=0.85)
    if note:
        axes.text(0.0, -0.2, textwrap.fill(note, 85), transform=axes.transAxes, fontsize=10, color="#7a4b00",
                  ha="left", va="top")
    return figure


PANEL_INCHES, COLOUR_BAR_INCHES = 2.6, 0.8  # the exported maps figure: one panel per image, then the bar


def maps_figure(image: np.ndarray, maps: Sequence[np.ndarray], titles: Sequence[str], vmax: float,
                cmap: str = DEFAULT_CMAP) -> Figure:
    """Input plus one heatmap per method on the shared scale, with a colour bar: the exportable figure."""
    count = len(maps) + 1
    width, height = PANEL_INCHES * count + COLOUR_BAR_INCHES, 3.0
    # Fixed positions: a constrained layout measured every label at each save, half of a run's file time.
    figure = Figure(figsize=(width, height), dpi=150)
    pad = 0.1
    axes = [figure.add_axes(((i * PANEL_INCHES + pad) / width, 0.04, (PANEL_INCHES - 2 * pad) / width, 0.82))
            for i in range(count)]
    axes[0].imshow(image)
    axes[0].set_title("input", fontsize=11)
    mappable = None
    for ax, saliency_map, title in zip(axes[1:], maps, titles, strict=True):
        mappable = ax.imshow(saliency_map, cmap=cmap, norm=Normalize(0, vmax))
        ax.set_title(title, fontsize=11)
    for ax in axes:
        ax.set_axis_off()
    if mappable is not None:
        bar = figure.add_axes(((PANEL_INCHES * count + 0.05) / width, 0.12, 0.12 / width, 0.68))
        figure.colorbar(mappable, cax=bar, label="Σ|attribution| over channels")
    return figure
