"""A run's results as talk files: the path animation (GIF, video) and the 16:9 maps slide."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from magig_core.animation import PathPanel, feature_rows
from magig_core.attribution.registry import method_color
from magig_core.explorer.compute import MethodResult, RunContext
from magig_core.talk import TalkMethod, TalkOptions, slide_caption, write_talk_files
from magig_core.viz import saliency


def result_panel(result: MethodResult) -> PathPanel | None:
    """The method's path images as an animation panel; None for a method without them (GI, AGI)."""
    if result.frames is None:
        return None
    gradients = maps = None
    if result.gradient_frames is not None and result.contribution_frames is not None:
        gradients, maps = feature_rows(result.gradient_frames, result.contribution_frames)
    return PathPanel(result.label, method_color(result.method), result.frames, result.frame_t, result.frame_probs,
                     gradients=gradients, maps=maps)


def write_slides(context: RunContext, results: Sequence[MethodResult], folder: Path,
                 options: TalkOptions | None = None) -> tuple[list[Path], list[str]]:
    """``path.gif``, ``path.mp4`` and ``slide.png`` for this run in ``folder``, plus notes on what was left out."""
    folder.mkdir(parents=True, exist_ok=True)
    methods = [TalkMethod(r.label, method_color(r.method), saliency(r.attributions), result_panel(r),
                          slide_caption(r.scores)) for r in results]
    return write_talk_files(folder / "talk", context.image, methods, target_name=context.target_name,
                            options=options or TalkOptions())
