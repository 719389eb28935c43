"""A method's map while its path is walked: the engine's running sum as plain data, and one cheap picture of it.

``explain`` calls its ``watch`` at every shown path position from inside the walk; the explorer's method
threads hand each snapshot, as a ``LiveMap``, to the thread that streams the run. A front end redraws
``forming_picture`` of the latest snapshot per walking method every second or so: it is drawn in numpy (no
figure), because anything slower would hold the interpreter while other visitors' quick calls wait. The
picture carries its own progress text, so a front end can show it as a plain image value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from magig_core.attribution import method_spec
from magig_core.attribution.path_record import PathSnapshot
from magig_core.attribution.registry import method_color
from magig_core.viz import heatmap, robust_max, saliency, to_uint8

CELL = 128  # side of each panel of the forming picture, in pixels
FORMING_CAPTION = "The maps forming as the paths are walked: path image · map so far · sum collected against t"
GAP = 4  # white space between panels and rows


@dataclass(frozen=True)
class LiveMap:
    """One method's running map at one shown path position (first image of the batch), numpy on the CPU."""

    method: str
    t: float  # path position of the point just walked
    done: int  # points walked
    total: int  # points on the path
    image: np.ndarray | None  # uint8 [H,W,3] the path image there
    partial: np.ndarray  # float32 [3,H,W] the attribution collected so far (the final map at the walk's end)
    collected_t: np.ndarray  # [k] path positions walked so far, in walk order
    collected: np.ndarray  # [k] signed sum of the map collected by each of them

    @property
    def label(self) -> str:
        return method_spec(self.method).label


def live_map(method: str, snapshot: PathSnapshot) -> LiveMap:
    return LiveMap(
        method=method, t=snapshot.t, done=snapshot.done, total=snapshot.total,
        image=to_uint8(snapshot.image[0]) if snapshot.image is not None else None,
        partial=snapshot.partial[0].detach().float().cpu().numpy(),
        collected_t=snapshot.collected_t.numpy(), collected=snapshot.collected[0].detach().cpu().numpy(),
    )


def forming_picture(forming: Sequence[LiveMap], *, cell: int = CELL) -> np.ndarray:
    """uint8 [H,W,3]: one row per walking method: its path image at the point just walked, its map so far
    (on its own colour scale) and the signed sum it has collected against t, the current t marked."""
    rows = [_row(live, cell) for live in forming]
    height = len(rows) * cell + (len(rows) - 1) * GAP
    picture = np.full((height, rows[0].shape[1], 3), 255, np.uint8)
    for k, row in enumerate(rows):
        picture[k * (cell + GAP):k * (cell + GAP) + cell] = row
    return picture


def _row(live: LiveMap, cell: int) -> np.ndarray:
    blank = np.full((cell, cell, 3), 255, np.uint8)
    path = _fit(live.image, cell) if live.image is not None else blank.copy()
    partial = saliency(live.partial)
    progress = f"t = {live.t:.2f} · {live.done}/{live.total}"
    panels = [_labelled(path, live.label, progress), _fit(heatmap(partial, robust_max([partial])), cell),
              _sparkline(live, cell)]
    gap = np.full((cell, GAP, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def _fit(picture: np.ndarray, cell: int) -> np.ndarray:
    """Nearest-neighbour resize to cell × cell: sharp pixels, and no filtering cost."""
    rows = np.arange(cell) * picture.shape[0] // cell
    cols = np.arange(cell) * picture.shape[1] // cell
    return np.ascontiguousarray(picture[rows][:, cols, :3])


def _labelled(picture: np.ndarray, top: str, bottom: str) -> np.ndarray:
    """The method's name in the top corner and how far it has walked in the bottom one, on white."""
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    for text, y in ((top, 2), (bottom, image.height - 13)):
        box = draw.textbbox((3, y), text)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(255, 255, 255))
        draw.text((3, y), text, fill=(0, 0, 0))
    return np.asarray(image)


def _sparkline(live: LiveMap, cell: int) -> np.ndarray:
    """The signed sum collected at each point walked, against t in [0, 1], scaled to the largest so far."""
    image = Image.new("RGB", (cell, cell), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    span = float(np.abs(live.collected).max()) if live.collected.size else 0.0
    top, bottom = 16, cell - 6

    def y(value: float) -> float:
        return (top + bottom) / 2 - (value / span if span > 0 else 0.0) * (bottom - top) / 2

    draw.rectangle((0, 0, cell - 1, cell - 1), outline=(200, 200, 200))
    draw.text((4, 2), "sum so far", fill=(120, 120, 120))
    draw.line((0, y(0.0), cell, y(0.0)), fill=(200, 200, 200))
    draw.line((live.t * (cell - 1), top, live.t * (cell - 1), bottom), fill=(150, 150, 150))
    order = np.argsort(live.collected_t, kind="stable")
    points = [(float(t) * (cell - 1), y(float(v))) for t, v in zip(live.collected_t[order], live.collected[order],
                                                                   strict=True)]
    colour = method_color(live.method)
    if len(points) > 1:
        draw.line(points, fill=colour, width=2)
    elif points:
        draw.point(points, fill=colour)
    return np.asarray(image)
