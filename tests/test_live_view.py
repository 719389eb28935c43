"""The picture of the maps forming (``explorer.live.forming_picture``): what each panel of a row shows."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from magig_core.explorer.live import CELL, GAP, LiveMap, forming_picture


def live(method: str, partial: np.ndarray, t: float, collected: list[float]) -> LiveMap:
    steps = np.linspace(0.0, t, len(collected))
    image = np.zeros((16, 16, 3), np.uint8)
    image[:8] = 200  # top half light, bottom half black
    return LiveMap(method=method, t=t, done=len(collected), total=20, image=image, partial=partial,
                   collected_t=steps, collected=np.asarray(collected))


def test_one_row_per_walking_method_with_path_image_map_and_collected_sum():
    """Catches rows in the wrong order, a map not drawn from the running sum, a stretched path image, and a
    sum curve that does not follow what was collected."""
    partial = np.zeros((3, 16, 16), np.float32)
    partial[0, 12:, 4:8] = 1.0  # attribution only in a bottom patch
    rows = [live("ma-gig", partial, 0.5, [0.0, 0.1, 0.4, 1.0]), live("gig", -partial, 0.9, [0.0, -0.5, -1.0])]
    picture = forming_picture(rows)
    assert picture.shape == (2 * CELL + GAP, 3 * CELL + 2 * GAP, 3) and picture.dtype == np.uint8

    scale = CELL // 16
    path = picture[:CELL, :CELL]
    assert (path[-1, -1] == 0).all() and (path[CELL // 2 - 1, -1] == 200).all()  # nearest-neighbour, no blur
    mapped = picture[:CELL, CELL + GAP:2 * CELL + GAP]
    cold = (np.asarray(colormaps["inferno"](0.0)[:3]) * 255 + 0.5).astype(np.uint8)
    assert (mapped[0, 0] == cold).all()  # no attribution: the colour map's floor
    hot = mapped[12 * scale:, 4 * scale:8 * scale]
    assert (hot == hot[0, 0]).all() and not (hot[0, 0] == cold).all()  # |A| on its own scale: the hot end
    assert np.array_equal(picture[CELL + GAP:, CELL + GAP:2 * CELL + GAP], mapped)  # the sign plays no part

    curve = picture[:CELL, 2 * (CELL + GAP):].astype(int)
    red = (curve[..., 0] > 150) & (curve[..., 1] < 90) & (curve[..., 2] < 90)  # MA-GIG's colour
    columns = np.flatnonzero(red.any(axis=0))
    assert columns.max() <= 0.5 * CELL + 2  # drawn only up to the current t
    rows_at = [np.flatnonzero(red[:, c]).mean() for c in (columns.min(), columns.max())]
    assert rows_at[1] < rows_at[0] - CELL / 3  # rises with the sum collected (y grows downwards)


def test_each_row_says_how_far_its_method_has_walked():
    """Catches a picture that gives no progress: the path cell's bottom corner changes with t and the count."""
    partial = np.ones((3, 8, 8), np.float32)
    early, late = (forming_picture([live("ma-gig", partial, t, [0.0, 1.0])]) for t in (0.25, 0.75))
    corner = slice(CELL - 14, CELL), slice(0, CELL)
    assert not np.array_equal(early[corner], late[corner])
    assert np.array_equal(early[:CELL - 14, :CELL], late[:CELL - 14, :CELL])  # the path image itself is the same
