"""A 16:9 slide of the maps: input and one attribution map per method, with labels big enough to read
from the back of a room and a colour bar, at an exact pixel size (1280×720, 1920×1080).

The scales are the app's: *per method* (default) shows each map relative to its own 99.5th percentile,
i.e. where each method puts its attribution, even when methods differ in total by orders of magnitude;
*shared* puts all maps on one absolute scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from magig_core.viz import DEFAULT_CMAP, robust_max

DPI = 100
SCALES = ("per method", "shared")


def maps_slide(image: np.ndarray, maps: Sequence[np.ndarray], labels: Sequence[str], *,
               size: tuple[int, int] = (1280, 720), title: str = "", colors: Sequence[str] | None = None,
               scale: str = "per method", cmap: str = DEFAULT_CMAP,
               captions: Sequence[str] | None = None) -> Figure:
    """Input plus saliency maps ([H,W] each) on one colour bar, each with an optional caption line under it
    (a score of the method); save with ``save_slide``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}; got {scale!r}")
    if scale == "per method":
        maps = [m / robust_max([m]) for m in maps]
    width, height = size
    points = height / DPI * 72  # the canvas height in typographic points
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    figure.get_layout_engine().set(w_pad=0.15, h_pad=0.15)
    if title:
        figure.suptitle(title, fontsize=0.05 * points, fontweight="bold")
    count = len(maps) + 1
    axes = figure.subplots(1, count, squeeze=False)[0]
    axes[0].imshow(image, interpolation="nearest")
    axes[0].set_title("input", fontsize=0.06 * points, fontweight="bold")
    vmax = 1.0 if scale == "per method" else robust_max(list(maps))
    mappable = None
    for k, (ax, saliency_map, label) in enumerate(zip(axes[1:], maps, labels, strict=True)):
        mappable = ax.imshow(saliency_map, cmap=cmap, norm=Normalize(0, vmax), interpolation="nearest")
        ax.set_title(label, fontsize=0.06 * points, fontweight="bold", color=colors[k] if colors else "black")
        if captions and captions[k]:
            ax.text(0.5, -0.03, captions[k], transform=ax.transAxes, ha="center", va="top",
                    fontsize=min(0.045, 0.25 / count) * points)
    for ax in axes:
        ax.set_axis_off()
    if mappable is not None:
        bar = figure.colorbar(mappable, ax=list(axes), shrink=0.75, fraction=0.03, pad=0.02)
        label = ("Σ|attribution|, each map to its 99.5th percentile" if scale == "per method"
                 else "Σ|attribution| over channels (shared scale)")
        bar.set_label(label, fontsize=0.032 * points)
        bar.ax.tick_params(labelsize=0.028 * points)
    return figure


def save_slide(figure: Figure, path: Path) -> Path:
    """PNG at exactly the figure's pixel size (no tight cropping, which would change it)."""
    figure.savefig(path, dpi=DPI, facecolor="white")
    return path
