"""The stage view: a run's maps and path images, big, on one screen, played and stepped in the browser.

Everything a speaker steps through is in one HTML block: every path image of every method is embedded
(hidden but one), so the arrow keys, the slider and playback only switch which one shows, with no
request to the server; a busy server or a slow network cannot make the stage stutter. ``stage.js``
(keyboard, slider, playback) and ``stage.css`` (a full-window overlay sized in viewport units, so it fits
1280×720 and 1920×1080 alike) ship next to the bundled assets.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence

import numpy as np
from PIL import Image

from magig_core.animation import SLIDE_SECONDS, PathPanel, frame_schedule
from magig_core.attribution.registry import method_color
from magig_core.bundled import bundled_path
from magig_core.explorer.compute import MethodResult, RunContext
from magig_core.explorer.render import method_maps
from magig_core.explorer.settings import RunSettings
from magig_core.explorer.slides import result_panel

START_T = 0.5  # the stage opens mid-path, where the methods' paths differ most (the page's slider does too)
PNG_UP_TO = 128  # sides up to this are sent losslessly; larger path images as WebP, to keep the page light
HEAD = "<script>\n{js}\n</script>"
# While a run walks its paths, stage.js copies the page's picture of the maps forming (#live-map) into this
# slot in the browser, so the stage shows them with no server work; it is hidden whenever that picture is.
FORMING_SLOT = ('<figure class="stage-live" hidden><img alt="The maps forming while the paths are walked">'
                "<figcaption></figcaption></figure>")


def stage_head() -> str:
    """The ``<head>`` addition that drives the stage (Gradio's ``launch(head=...)``)."""
    return HEAD.format(js=bundled_path("stage", "stage.js").read_text())


def stage_css() -> str:
    return bundled_path("stage", "stage.css").read_text()


def stage_html(settings: RunSettings | None, context: RunContext | None, results: Sequence[MethodResult], *,
               style: str = "heatmap", scale: str = "per method", seconds: float = SLIDE_SECONDS) -> str:
    """The stage for a run: a header, one column per method (map above, path image below, and under it the
    input gradient there when the run recorded it), the slider."""
    if context is None or settings is None or not results:
        return _page(_header("No maps yet"), '<p class="stage-empty">Pick an example and press Run, '
                     "then come back (Esc leaves the stage view).</p>", "")
    top = context.predictions[0] if context.predictions else None
    confidence = f" (p = {top.probability:.2f})" if top is not None and top.index == context.target else ""
    title = (f"Why <b>{html.escape(context.target_name)}</b>{confidence}? "
             f'<span class="stage-models">{html.escape(settings.classifier)} · '
             f"{html.escape(settings.autoencoder)}</span>")
    maps = method_maps(context, results, style=style, scale=scale)
    panels = {r.method: p for r in results if (p := result_panel(r)) is not None}
    grid_t, schedules = frame_schedule(list(panels.values())) if panels else (np.zeros(1), [])
    schedule = dict(zip(panels, schedules, strict=True))
    start = int(np.abs(grid_t - START_T).argmin())
    cells = [_map_cell(r, picture) for r, (picture, _) in zip(results, maps, strict=True)]
    cells += [_path_cell(r, context.target_name, schedule.get(r.method), start) for r in results]
    rows = 2
    if any(p.gradients is not None for p in panels.values()):
        rows = 3
        cells += [_gradient_cell(r, panels.get(r.method), schedule.get(r.method), start) for r in results]
    grid = f'<div class="stage-grid" style="--cols: {len(results)}; --rows: {rows}">{"".join(cells)}</div>'
    fps = len(grid_t) / seconds
    return _page(_header(title), grid, _footer(grid_t, start), count=len(grid_t), fps=fps)


def _page(header: str, body: str, footer: str, *, count: int = 0, fps: float = 0.0) -> str:
    positions = f' data-count="{count}" data-fps="{fps:.3f}"' if count else ""
    return f'<div class="magig-stage"{positions}>{header}{body}{footer}{FORMING_SLOT}</div>'


def _header(title: str) -> str:
    return ('<div class="stage-head">'
            f'<div class="stage-title">{title}</div>'
            '<div class="stage-keys">← → step · space play/pause · Esc leave</div>'
            '<button type="button" class="stage-play" title="Play or pause the path (space)">▶ Play</button>'
            '<button type="button" class="stage-exit" title="Leave the stage view (Esc)">✕</button>'
            "</div>")


def _footer(grid_t: np.ndarray, start: int) -> str:
    ticks = json.dumps([round(float(t), 3) for t in grid_t])
    return ('<div class="stage-foot">'
            '<span class="stage-end">baseline</span>'
            f'<input class="stage-slider" type="range" min="0" max="{len(grid_t) - 1}" step="1" value="{start}" '
            f"aria-label=\"Path position\" data-t='{ticks}'>"
            '<span class="stage-end">input</span>'
            f'<output class="stage-position">t = {grid_t[start]:.2f}</output>'
            "</div>")


def _map_cell(result: MethodResult, picture: np.ndarray) -> str:
    label = html.escape(result.label)
    return (f'<figure class="stage-cell stage-map" id="stage-map-{result.method}">'
            f'<figcaption style="color: {method_color(result.method)}">{label}</figcaption>'
            f'<img src="{_data_uri(picture)}" alt="{label} attribution map"{_pixelated(picture)}></figure>')


def _path_cell(result: MethodResult, target_name: str, schedule: np.ndarray | None, start: int) -> str:
    method = result.method
    if schedule is None:
        return (f'<figure class="stage-cell stage-path stage-none" id="stage-path-{method}">'
                f"<figcaption>{html.escape(result.label)} has no path images</figcaption></figure>")
    target = html.escape(target_name)
    frames = []
    for k in range(len(result.frames)):
        hidden = "" if k == schedule[start] else " hidden"
        frames.append(
            f'<div class="stage-frame" data-frame="{k}"{hidden}>'
            f'<img src="{_data_uri(result.frames[k])}" alt="{html.escape(result.label)} path image {k}"'
            f"{_pixelated(result.frames[k])}>"
            f"<figcaption>t = {result.frame_t[k]:.2f} · p({target}) = {result.frame_probs[k]:.2f}</figcaption>"
            "</div>")
    steps = json.dumps([int(i) for i in schedule])
    return (f'<figure class="stage-cell stage-path" id="stage-path-{method}" data-schedule="{steps}">'
            f'{"".join(frames)}</figure>')


def _gradient_cell(result: MethodResult, panel: PathPanel | None, schedule: np.ndarray | None, start: int) -> str:
    """The classifier's input gradient at each path image (one colour scale along the path), stepped with them."""
    method = result.method
    if panel is None or panel.gradients is None or schedule is None:
        return (f'<figure class="stage-cell stage-path stage-gradient stage-none" id="stage-gradient-{method}">'
                f"<figcaption>{html.escape(result.label)}: no gradients along a path</figcaption></figure>")
    frames = []
    for k, picture in enumerate(panel.gradients):
        hidden = "" if k == schedule[start] else " hidden"
        frames.append(
            f'<div class="stage-frame" data-frame="{k}"{hidden}>'
            f'<img src="{_data_uri(picture)}" alt="{html.escape(result.label)} gradient {k}"{_pixelated(picture)}>'
            f"<figcaption>|∇F| at t = {result.frame_t[k]:.2f}</figcaption></div>")
    steps = json.dumps([int(i) for i in schedule])
    return (f'<figure class="stage-cell stage-path stage-gradient" id="stage-gradient-{method}" '
            f'data-schedule="{steps}">{"".join(frames)}</figure>')


def _pixelated(picture: np.ndarray) -> str:
    return ' class="pixelated"' if max(picture.shape[:2]) <= PNG_UP_TO else ""


def _data_uri(picture: np.ndarray) -> str:
    buffer = io.BytesIO()
    if max(picture.shape[:2]) <= PNG_UP_TO:
        Image.fromarray(picture).save(buffer, format="PNG")
        kind = "png"
    else:
        Image.fromarray(picture).save(buffer, format="WEBP", quality=90)
        kind = "webp"
    return f"data:image/{kind};base64,{base64.b64encode(buffer.getvalue()).decode()}"
