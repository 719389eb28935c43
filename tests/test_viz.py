"""Heatmaps, overlays and figures: one colour scale means one colour for one attribution value."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps

from magig_core.viz import (
    DEFAULT_CMAP,
    Curve,
    heatmap,
    maps_figure,
    overlay,
    path_figure,
    robust_max,
    saliency,
    to_uint8,
)


def test_saliency_sums_absolute_values_over_channels():
    attributions = torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]], [[0.0, 0.5]]])  # [3,1,2]
    np.testing.assert_allclose(saliency(attributions), [[4.0, 3.0]])


def test_shared_scale_gives_equal_colours_for_equal_values():
    weak = np.full((4, 4), 0.5)
    strong = np.full((4, 4), 0.5)
    strong[0, 0] = 100.0  # one outlier is clipped by the percentile, the rest stays comparable
    vmax = robust_max([weak, strong], percentile=90)
    assert vmax == 0.5
    np.testing.assert_array_equal(heatmap(weak, vmax)[1, 1], heatmap(strong, vmax)[1, 1])


def test_heatmap_uses_the_colormap_end_points():
    values = np.array([[0.0, 2.0, 10.0]])
    image = heatmap(values, vmax=2.0)
    assert image.dtype == np.uint8 and image.shape == (1, 3, 3)
    top = (np.array(colormaps[DEFAULT_CMAP](1.0)[:3]) * 255 + 0.5).astype(np.uint8)
    bottom = (np.array(colormaps[DEFAULT_CMAP](0.0)[:3]) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(image[0, 0], bottom)
    np.testing.assert_array_equal(image[0, 1], top)
    np.testing.assert_array_equal(image[0, 2], top)  # values above vmax are clipped, not wrapped


def test_robust_max_of_all_zero_maps_is_one_not_zero():
    assert robust_max([np.zeros((3, 3))]) == 1.0


def test_overlay_leaves_unimportant_pixels_as_dimmed_input():
    image = np.full((2, 2, 3), 200, dtype=np.uint8)
    sal = np.array([[0.0, 0.0], [0.0, 1.0]])
    out = overlay(image, sal, vmax=1.0)
    np.testing.assert_array_equal(out[0, 0], [120, 120, 120])
    assert not np.array_equal(out[1, 1], out[0, 0])


def test_to_uint8_clamps_decoded_overshoot():
    frame = torch.tensor([[[-0.2, 0.5]], [[1.3, 0.0]], [[0.25, 1.0]]])
    np.testing.assert_array_equal(to_uint8(frame), [[[0, 255, 64], [128, 0, 255]]])


def test_path_figure_has_one_line_per_method_with_auc_and_the_note():
    t = np.linspace(0, 1, 5)
    figure = path_figure([Curve("ma-gig", "MA-GIG", t, t, 0.5), Curve("gig", "GIG", t, t**2, 0.333)],
                         title="conf", ylabel="p", marker=0.25, note="fallback because of X")
    axes = figure.axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert labels == ["MA-GIG  (AUC 0.500)", "GIG  (AUC 0.333)"]
    assert len(axes.lines) == 3  # two curves + the marker
    assert any("fallback because of X" in text.get_text() for text in axes.texts)


def test_maps_figure_has_input_plus_one_panel_per_map_and_a_colorbar():
    figure = maps_figure(np.zeros((4, 4, 3), np.uint8), [np.ones((4, 4))] * 2, ["A", "B"], vmax=1.0)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:3] == ["input", "A", "B"] and len(figure.axes) == 4
