"""What a speaker takes to the slides: the path animation (GIF and video) and the 16:9 maps slide.

The command line and the web app both call ``write_talk_files``, so a slide made from either shows the
same pictures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magig_core.animation import SLIDE_SECONDS, SLIDE_SIZE, PathPanel, compose, write_animation
from magig_core.metrics.definitions import metric
from magig_core.metrics.scores import Scores
from magig_core.slide import maps_slide, save_slide

SLIDE_METRIC = "diffid_top1"  # the score under each map: the paper's DiffID


@dataclass(frozen=True)
class TalkOptions:
    size: tuple[int, int] = SLIDE_SIZE
    seconds: float = SLIDE_SECONDS  # length of one pass along the path
    video: str = ".mp4"  # or ".webm"
    scale: str = "per method"  # the maps slide's colour scale: "per method" or "shared"


def slide_caption(scores: Scores) -> str:
    """The paper's DiffID under a method's map, named and valued as in every table (empty without one)."""
    value = scores[SLIDE_METRIC]
    return f"{metric(SLIDE_METRIC).label}\n{value:.3f}" if math.isfinite(value) else ""


@dataclass(frozen=True)
class TalkMethod:
    """One method's map ([H,W] saliency), its path images (None for a method without a path) and the line
    shown under its map (``slide_caption`` of its scores)."""

    label: str
    color: str
    saliency: np.ndarray
    panel: PathPanel | None
    caption: str = ""


def write_talk_files(stem: Path, image: np.ndarray, methods: Sequence[TalkMethod], *, target_name: str,
                     options: TalkOptions = TalkOptions()) -> tuple[list[Path], list[str]]:
    """``<stem>_path.gif``, ``<stem>_path.mp4`` and ``<stem>_slide.png``; notes say what was left out."""
    notes: list[str] = []
    slide = maps_slide(image, [m.saliency for m in methods], [m.label for m in methods], size=options.size,
                       title=f"What made the classifier say '{target_name}'?", colors=[m.color for m in methods],
                       scale=options.scale, captions=[m.caption for m in methods])
    paths = [save_slide(slide, stem.with_name(f"{stem.name}_slide.png"))]
    panels = [m.panel for m in methods if m.panel is not None]
    pathless = [m.label for m in methods if m.panel is None]
    note = f"{', '.join(pathless)}: no path images, not animated" if pathless else ""
    if pathless:
        notes.append(f"{note}.")
    if not panels:
        return paths, notes
    title = " vs ".join(p.label for p in panels) + ": the path from baseline to input"
    frames = compose(panels, options.size, title=title, target_name=target_name, note=note)
    animations, more = write_animation(frames, stem.with_name(f"{stem.name}_path"), options.seconds,
                                       options.video)
    return animations + paths, notes + more
