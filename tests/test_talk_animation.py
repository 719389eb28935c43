"""``explain --animate``: the path animation (GIF, MP4) and the maps slide, checked against ``explain()``.

Each method's panel in every decoded frame is compared with that method's path image from
``explain(..., frames=N)`` scaled the way slides scale it: within the GIF's 256-colour palette error and
the video codec's error, and closer to its own path image than to any other frame of the path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from magig_core.animation import (
    explanation_panel,
    fit_image,
    image_origin,
    layout,
    parse_size,
    row_box,
)
from magig_core.attribution import explain
from magig_core.bundled import bundled_path
from magig_core.cli import main
from magig_core.images import load_image, to_tensor
from magig_core.models.demo_shapes import load_demo_autoencoder, load_demo_classifier
from magig_core.viz import heatmap, robust_max, saliency

EXAMPLE = bundled_path("examples", "star_0.png")
SIZE = (960, 540)
FRAMES = 10
STEPS = 20
SECONDS = 2.5
DEMO_MODELS = ("--classifier", "demo-shapes", "--autoencoder", "demo-shapes")


def decode_gif(path) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(path) as gif:
        frames = [(np.asarray(f.convert("RGB")), f.info["duration"]) for f in ImageSequence.Iterator(gif)]
    return [f for f, _ in frames], [d for _, d in frames]


def decode_video(path) -> tuple[list[np.ndarray], dict]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader], meta


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("animate")
    code = main(["explain", str(EXAMPLE), *DEMO_MODELS, "--methods", "ma-gig,gig,gi", "--steps", str(STEPS),
                 "--animate", "--frames", str(FRAMES), "--animate-size", "x".join(map(str, SIZE)),
                 "--animate-seconds", str(SECONDS), "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def explained():
    """The CLI run's image and explanations, computed here with ``explain``."""
    classifier, autoencoder = load_demo_classifier(), load_demo_autoencoder()
    image = to_tensor(load_image(EXAMPLE).image, classifier.input_size)
    results = {method: explain(image, classifier, method, autoencoder=autoencoder, steps=STEPS, frames=FRAMES)
               for method in ("ma-gig", "gig", "gi")}
    return classifier, image, results


@pytest.fixture(scope="module")
def panels(explained):
    _, _, results = explained
    return [explanation_panel(method, results[method]) for method in ("ma-gig", "gig")]


def panel_errors(decoded: list[np.ndarray], panels, row: int = 0) -> tuple[np.ndarray, list[list[int]]]:
    """Mean absolute error of each panel's image row ``row`` in each frame (0: path images, 1: gradients,
    2: growing maps), and which of that row's images each panel looks most like."""
    errors, nearest = np.zeros((len(panels), len(decoded))), []
    for p, (panel, top) in enumerate(zip(panels, layout(SIZE, len(panels), rows=3), strict=True)):
        box = row_box(top, row, SIZE[1])
        expected = [fit_image(f, box.side).astype(np.int16) for f in panel.rows[row]]
        x, y = image_origin(box, expected[0])
        h, w = expected[0].shape[:2]
        crops = [frame[y:y + h, x:x + w].astype(np.int16) for frame in decoded]
        errors[p] = [np.abs(crop - expected[k]).mean() for k, crop in enumerate(crops)]
        nearest.append([int(np.argmin([np.abs(crop - e).mean() for e in expected])) for crop in crops])
    return errors, nearest


def test_panels_are_whole_pixel_blocks_of_the_path_images(panels):
    box = layout(SIZE, 2)[0]
    frame = panels[0].frames[3]
    factor = box.side // 64
    assert factor >= 2
    np.testing.assert_array_equal(fit_image(frame, box.side), np.kron(frame, np.ones((factor, factor, 1),
                                                                                     dtype=np.uint8)))


def test_gif_has_the_requested_frames_size_and_length_and_shows_the_path_images(written, panels):
    frames, durations = decode_gif(written / "star_0_path.gif")
    assert len(frames) == FRAMES == len(panels[0].frames)
    assert frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert sum(durations) == pytest.approx(1000 * SECONDS, abs=10 * FRAMES)
    errors, nearest = panel_errors(frames, panels)
    assert errors.max() < 8.0, errors  # 256 colours per frame for thousands of path-image colours
    assert nearest == [list(range(FRAMES))] * 2
    for row in (1, 2):  # the gradient row and the growing map move with the path too (early maps are all
        errors, _ = panel_errors(frames, panels, row)  # near zero, alike: the nearest image is not unique)
        assert errors.max() < 8.0, (row, errors)


def test_the_growing_map_ends_at_the_final_map_and_gradients_share_one_scale(panels, explained):
    """The map row's last image is the final map on its own scale; the gradient row is ∂F/∂x at the shown path
    images. Catches partial maps that skip the last stretch, per-frame colour scales (every gradient frame
    would then reach the top colour), and a gradient row drawn from the contributions instead."""
    _, _, results = explained
    for panel, result in zip(panels, (results["ma-gig"], results["gig"]), strict=True):
        final = saliency(result.attributions[0])
        np.testing.assert_allclose(panel.maps[-1], heatmap(final, robust_max([final])), atol=1)
        gradients = [saliency(g) for g in result.gradient_frames[0]]
        expected = np.stack([heatmap(g, robust_max(gradients)) for g in gradients])
        np.testing.assert_allclose(panel.gradients, expected, atol=1)
        assert not np.array_equal(panel.maps[0], panel.maps[-1])


def test_video_has_the_requested_frames_size_and_rate_and_shows_the_path_images(written, panels):
    frames, meta = decode_video(written / "star_0_path.mp4")
    assert len(frames) == FRAMES
    assert tuple(meta["size"]) == SIZE
    assert meta["fps"] == pytest.approx(FRAMES / SECONDS, rel=0.01)
    errors, nearest = panel_errors(frames, panels)
    assert errors.max() < 4.0, errors  # H.264 at CRF 12 with 4:2:0 chroma
    assert nearest == [list(range(FRAMES))] * 2


@pytest.fixture(scope="module")
def slide_content(explained):
    """The input (uint8), each method's [H,W] map (Σ|A| over channels), their labels and the class explained."""
    classifier, image, results = explained
    maps = [np.abs(r.attributions[0].numpy().astype(np.float64)).sum(axis=0) for r in results.values()]
    target = classifier.class_names[int(results["gi"].targets[0])]
    pixels = (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return pixels, maps, ["MA-GIG", "GIG", "GI"], target


def cell_centres(axes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """PNG row and column of the centre of each data cell of an image drawn to fill ``axes``."""
    box = axes.get_window_extent()
    rows, cols = shape
    x = box.x0 + (np.arange(cols) + 0.5) * box.width / cols
    y = box.y1 - (np.arange(rows) + 0.5) * box.height / rows
    return (SIZE[1] - y).astype(int), x.astype(int)


def test_the_slide_shows_the_input_and_each_method_s_map(written, slide_content):
    """The slide's pixels, sampled at the centre of every data cell: the input exactly, and each map in the
    colour map at its own 99.5th-percentile scale, in the order the methods were asked for.

    Catches a blank or wrongly sized slide, maps of another run, swapped panels or another colour scale. Only
    the panels' places on the canvas are taken from ``maps_slide`` (drawn again here at the same size).
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from magig_core.slide import maps_slide
    from magig_core.viz import DEFAULT_CMAP

    image, maps, labels, target = slide_content
    with Image.open(written / "star_0_slide.png") as png:
        assert png.size == SIZE
        slide = np.asarray(png.convert("RGB")).astype(int)
    layout_only = maps_slide(image, maps, labels, size=SIZE, title=f"What made the classifier say '{target}'?")
    FigureCanvasAgg(layout_only).draw()
    panels = layout_only.axes[:len(maps) + 1]
    rows, cols = cell_centres(panels[0], image.shape[:2])
    assert np.abs(slide[np.ix_(rows, cols)] - image).max() <= 2
    colours = colormaps[DEFAULT_CMAP]
    for axes, saliency_map in zip(panels[1:], maps, strict=True):
        expected = colours(np.clip(saliency_map / np.percentile(saliency_map, 99.5), 0, 1), bytes=True)[..., :3]
        rows, cols = cell_centres(axes, saliency_map.shape)
        assert np.abs(slide[np.ix_(rows, cols)] - expected.astype(int)).max() <= 3
    assert (written / "star_0_maps.png").exists()


def test_the_cli_says_which_methods_were_not_animated(tmp_path, capsys):
    assert main(["explain", str(EXAMPLE), *DEMO_MODELS, "--methods", "gig,gi", "--steps", "4", "--animate",
                 "--frames", "3", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "GI: no path images, not animated" in printed
    assert {p.name for p in tmp_path.iterdir()} >= {"star_0_path.gif", "star_0_path.mp4", "star_0_slide.png"}


@pytest.mark.parametrize("text", ["1280", "12x7", "1281x720", "wide"])
def test_bad_sizes_are_refused(text, capsys):
    with pytest.raises(ValueError):
        parse_size(text)
    assert main(["explain", str(EXAMPLE), "--animate", "--animate-size", text]) == 2
    assert "explain: error: --animate: size must" in capsys.readouterr().err


def test_no_frames_no_animation(tmp_path):
    torch.manual_seed(0)
    assert explanation_panel("gi", explain(torch.rand(1, 3, 8, 8), torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(192, 3)), "gi", frames=4)) is None


def test_webm_videos_too(tmp_path):
    """The decoded WebM shows the frames written, in order: catches a video of the right size and length
    whose pictures are blank, repeated or shuffled (noise would not survive VP9, so smooth distinct frames)."""
    from magig_core.animation import write_video

    ramp = np.linspace(0, 255, 320)[None, :, None] * np.ones((180, 1, 3))
    frames = np.stack([ramp] * 4).astype(np.uint8)
    for k in range(4):  # a block whose place and colour say which frame this is
        frames[k, 40:140, 60 * k + 20:60 * k + 80] = (255 - 60 * k, 40 * k, 120)
    decoded, meta = decode_video(write_video(frames, tmp_path / "path.webm", seconds=1.0))
    assert len(decoded) == 4 and tuple(meta["size"]) == (320, 180)
    errors = np.array([[np.abs(d.astype(int) - f.astype(int)).mean() for f in frames] for d in decoded])
    assert errors.argmin(axis=1).tolist() == [0, 1, 2, 3]
    assert errors.diagonal().max() < 6.0, errors
