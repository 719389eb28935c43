"""Path animations for slides: each method's path images side by side, labelled, with the target
probability ticking under each, written as an animated GIF and an MP4 (or WebM) video. Under each path
image, where the explanation recorded them: the classifier's input gradient there (one colour scale for
all positions) and the map collected so far (on the final map's scale), so the map grows as the path runs.

Frames are drawn with Pillow straight into a fixed-size canvas rather than with matplotlib: every pixel of
a method's panel is a known function of that method's path image (``fit_image`` placed at ``layout``'s
box, row by row with ``row_box``), so what a slide shows can be checked against the explanation it came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image, ImageDraw, ImageFont

SLIDE_SIZE = (1280, 720)
SLIDE_SECONDS = 3.0
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"  # DejaVu Sans ships with matplotlib
BACKGROUND = (255, 255, 255)
INK = (25, 25, 25)
MUTED = (110, 110, 110)
TRACK = (225, 225, 225)
VIDEO_CODECS = {".mp4": "libx264", ".webm": "libvpx-vp9"}
VIDEO_CRF = 12  # near-transparent quality; slides are short, so size stays small


class VideoUnavailableError(RuntimeError):
    """No ffmpeg binary to write videos with (the ``imageio-ffmpeg`` package is not installed)."""


@dataclass(frozen=True)
class PathPanel:
    """One method's path images with their path positions and target probabilities."""

    label: str
    color: str  # any matplotlib colour; the method's colour in every plot
    frames: np.ndarray  # uint8 [F,H,W,3]
    t: np.ndarray  # [F] path positions in [0,1]
    probs: np.ndarray  # [F] target probability at each frame
    gradients: np.ndarray | None = None  # uint8 [F,H,W,3] heatmap of |∇F| at each frame's path image
    maps: np.ndarray | None = None  # uint8 [F,H,W,3] heatmap of the attribution collected up to each frame

    @property
    def rows(self) -> list[np.ndarray]:
        """The image rows of this panel, top to bottom: path images, then gradients and growing maps if any."""
        return [row for row in (self.frames, self.gradients, self.maps) if row is not None]


@dataclass(frozen=True)
class Box:
    """A square image area on the canvas, in pixels."""

    left: int
    top: int
    side: int


def parse_size(text: str) -> tuple[int, int]:
    """"1280x720" → (1280, 720); both sides even, as H.264 with 4:2:0 chroma needs."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"size must look like 1280x720; got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width < 320 or height < 180 or width % 2 or height % 2:
        raise ValueError(f"size must be at least 320x180 with even sides; got {width}x{height}")
    return width, height


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)


@dataclass(frozen=True)
class _Metrics:
    """Font sizes and vertical slots, proportional to the canvas height so 720p and 1080p look alike."""

    height: int
    title: int
    label: int
    caption: int
    small: int
    margin: int
    bar: int

    @classmethod
    def for_height(cls, height: int) -> _Metrics:
        return cls(height=height, title=round(0.042 * height), label=round(0.058 * height),
                   caption=round(0.05 * height), small=round(0.03 * height), margin=round(0.025 * height),
                   bar=max(4, round(0.018 * height)))

    @property
    def above(self) -> int:
        """Rows above the images: title and method labels."""
        return 2 * self.margin + round(1.2 * self.title) + round(1.1 * self.label)

    @property
    def track_top(self) -> int:
        """Top of the path-position track; the note (if any) sits under it."""
        return self.height - self.margin - round(1.3 * self.small) - self.bar

    @property
    def below(self) -> int:
        """Rows under the images: probability text and bar, then the path-position line and track."""
        return (self.height - self.track_top) + self.margin + round(1.2 * self.small) + round(1.2 * self.caption) \
            + self.bar + self.margin


def layout(size: tuple[int, int], count: int, rows: int = 1) -> list[Box]:
    """The path-image box of each of ``count`` panels: equal squares side by side, centred, each panel
    ``rows`` pictures wide (the path image, then its gradient and the map so far: ``row_box``)."""
    width, height = size
    m = _Metrics.for_height(height)
    gap, inner = 2 * m.margin, _row_gap(height) * (rows - 1)
    squares = max(count, 1) * rows
    side = min(height - m.above - m.below, (width - 2 * m.margin - gap * (count - 1) - inner * count) // squares)
    if side < 16:
        raise ValueError(f"{count} panels of {rows} picture(s) do not fit into {width}x{height}")
    panel = rows * side + inner
    left = (width - count * panel - gap * (count - 1)) // 2
    return [Box(left + k * (panel + gap), m.above, side) for k in range(count)]


def row_box(box: Box, row: int, height: int) -> Box:
    """The box of picture ``row`` (0: the path image) of the panel whose path image sits in ``box``."""
    return Box(box.left + row * (box.side + _row_gap(height)), box.top, box.side)


def _row_gap(height: int) -> int:
    return _Metrics.for_height(height).margin // 2


def fit_image(image: np.ndarray, side: int) -> np.ndarray:
    """A path image scaled to fit a ``side``-pixel square: whole-pixel blocks (1× included) when it fits, so
    the pixels stay crisp on a projector and a GIF palette spends no colours on resampling blends; a smooth
    downscale otherwise."""
    height, width = image.shape[:2]
    factor = side // max(height, width)
    if factor >= 1:
        return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    scale = side / max(height, width)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(target, Image.Resampling.LANCZOS))


def image_origin(box: Box, fitted: np.ndarray) -> tuple[int, int]:
    """Top-left corner (x, y) of a fitted image centred in its box, on even coordinates: a video's 4:2:0 chroma
    is shared by 2x2 pixel squares, which then never straddle two of the image's pixel blocks."""
    height, width = fitted.shape[:2]
    x, y = box.left + (box.side - width) // 2, box.top + (box.side - height) // 2
    return x - x % 2, y - y % 2


def frame_schedule(panels: Sequence[PathPanel]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Path positions of the animation's frames (those of the panel with most frames) and, per panel, the
    index of its frame nearest to each; panels with equal frame counts advance in lockstep."""
    reference = max(panels, key=lambda p: len(p.t))
    grid = np.asarray(reference.t, dtype=np.float64)
    return grid, [np.abs(np.asarray(p.t)[None, :] - grid[:, None]).argmin(axis=1) for p in panels]


def compose(panels: Sequence[PathPanel], size: tuple[int, int] = SLIDE_SIZE, *, title: str = "",
            target_name: str = "target", note: str = "") -> np.ndarray:
    """uint8 [F,H,W,3]: the animation's frames, one per path position."""
    if not panels:
        raise ValueError("no method with path images to animate")
    width, height = size
    m = _Metrics.for_height(height)
    rows = max(len(panel.rows) for panel in panels)
    boxes = layout(size, len(panels), rows)
    grid, schedules = frame_schedule(panels)
    fitted = [[[fit_image(f, box.side) for f in row] for row in panel.rows] for panel, box in zip(panels, boxes,
                                                                                                strict=True)]
    extents = [[_extent(row_box(box, row, height), pictures[0]) for row, pictures in enumerate(images)]
               for box, images in zip(boxes, fitted, strict=True)]
    fonts = {"title": _font(m.title, bold=True), "label": _font(m.label, bold=True),
             "caption": _font(m.caption), "small": _font(m.small)}
    static = _static_layer(panels, extents, size, m, fonts, title, note)
    frames = np.empty((len(grid), height, width, 3), dtype=np.uint8)
    for k, t in enumerate(grid):
        canvas = static.copy()
        draw = ImageDraw.Draw(canvas)
        for panel, box, images, schedule, extent in zip(panels, boxes, fitted, schedules, extents, strict=True):
            index = int(schedule[k])
            for row, pictures in enumerate(images):
                canvas.paste(Image.fromarray(pictures[index]), image_origin(row_box(box, row, height),
                                                                            pictures[index]))
            _probability(draw, panel, extent[0], float(panel.probs[index]), target_name, m, fonts["caption"])
        _timeline(draw, float(t), size, m, fonts["small"])
        frames[k] = np.asarray(canvas)
    return frames


def _extent(box: Box, fitted: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the picture itself, which labels and bars hug."""
    left, top = image_origin(box, fitted)
    return left, top, left + fitted.shape[1], top + fitted.shape[0]


def _static_layer(panels, extents, size, m: _Metrics, fonts, title: str, note: str) -> Image.Image:
    width, height = size
    canvas = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((width // 2, m.margin), title, fill=INK, font=fonts["title"], anchor="ma")
    for panel, pictures in zip(panels, extents, strict=True):
        left, top, right = pictures[0][0], pictures[0][1], pictures[-1][2]
        draw.text(((left + right) // 2, top - m.margin // 2), panel.label, fill=_rgb(panel.color),
                  font=fonts["label"], anchor="md")
        for (left, _, right, bottom), caption in zip(pictures[1:], ROW_CAPTIONS[1:], strict=False):
            draw.text(((left + right) // 2, bottom + m.margin // 2), caption, fill=MUTED, font=fonts["small"],
                      anchor="ma")
    if note:
        draw.text((width // 2, height - m.margin // 2), note, fill=MUTED, font=fonts["small"], anchor="md")
    return canvas


ROW_CAPTIONS = ("", "gradient |∇F| here", "map so far")  # under the pictures right of each path image


def _probability(draw: ImageDraw.ImageDraw, panel: PathPanel, extent, prob: float, target_name: str,
                 m: _Metrics, font) -> None:
    """The target probability as text and as a bar as wide as the picture above it."""
    left, _, right, bottom = extent
    top = bottom + m.margin // 2
    text = f"p({target_name}) = {prob:.2f}"
    if draw.textlength(text, font=font) > right - left + 2 * m.margin:  # narrow pictures: keep off the neighbours
        font = font.font_variant(size=m.small)
    draw.text(((left + right) // 2, top), text, fill=INK, font=font, anchor="ma")
    bar_top = top + round(1.2 * m.caption)
    draw.rectangle((left, bar_top, right - 1, bar_top + m.bar - 1), fill=TRACK)
    filled = round(np.clip(prob, 0.0, 1.0) * (right - left))
    if filled:
        draw.rectangle((left, bar_top, left + filled - 1, bar_top + m.bar - 1), fill=_rgb(panel.color))


def _timeline(draw: ImageDraw.ImageDraw, t: float, size: tuple[int, int], m: _Metrics, font) -> None:
    """Where along the path this frame is: a track filled up to t, with the value written above it."""
    width, _ = size
    top, text_y = m.track_top, m.track_top - m.margin // 3
    left, right = 2 * m.margin, width - 2 * m.margin
    draw.text((left, text_y), "t = 0: baseline", fill=MUTED, font=font, anchor="ld")
    draw.text((right, text_y), "t = 1: input", fill=MUTED, font=font, anchor="rd")
    draw.text((width // 2, text_y), f"path position t = {t:.2f}", fill=INK, font=font, anchor="md")
    draw.rectangle((left, top, right, top + m.bar - 1), fill=TRACK)
    end = left + round(np.clip(t, 0.0, 1.0) * (right - left))
    draw.rectangle((left, top, end, top + m.bar - 1), fill=INK)


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(round(255 * c) for c in to_rgb(color))  # type: ignore[return-value]


def write_gif(frames: np.ndarray, path: Path, seconds: float = SLIDE_SECONDS) -> Path:
    """Looping GIF, each frame with its own 256-colour palette and no dithering (dither noise would flicker
    from frame to frame). The palette is fitted by maximum coverage to the frame's picture pixels, with the
    white canvas counted once: with a path image, a gradient and a map per method, median cut over the whole
    frame left the path images with half again the error.
    """
    images = []
    for frame in frames:
        palette = _palette_sample(frame).quantize(256, method=Image.Quantize.MAXCOVERAGE, kmeans=1)
        images.append(Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE))
    duration = max(20, round(1000 * seconds / len(images)))
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0)
    return path


def _palette_sample(frame: np.ndarray) -> Image.Image:
    """The pixels a frame's palette is fitted to: every picture pixel, and the plain background only once, so
    that the large white canvas does not take palette colours from the path images and maps."""
    pixels = frame.reshape(-1, 3)
    shown = pixels[(pixels != BACKGROUND).any(axis=1)]
    sample = np.concatenate([np.asarray([BACKGROUND], dtype=np.uint8), shown])
    return Image.fromarray(sample.reshape(-1, 1, 3))


def write_video(frames: np.ndarray, path: Path, seconds: float = SLIDE_SECONDS) -> Path:
    """H.264 MP4 (or VP9 WebM, by suffix) at ``len(frames) / seconds`` frames per second, yuv420p so that
    presentation software and browsers play it; ``VideoUnavailableError`` without ``imageio-ffmpeg``. Colour
    is averaged over each 2x2 square ("area" scaling), so pixel blocks keep their own colour instead of
    taking their neighbours' (the default filter bled the colours of noisy path images by 30 levels)."""
    try:
        import imageio_ffmpeg
    except ImportError as err:
        raise VideoUnavailableError("writing videos needs the imageio-ffmpeg package "
                                    "(pip install imageio-ffmpeg); the GIF has the same frames") from err
    codec = VIDEO_CODECS.get(path.suffix.lower())
    if codec is None:
        raise ValueError(f"video files must end in {' or '.join(VIDEO_CODECS)}; got {path.name}")
    height, width = frames.shape[1:3]
    container = ["-b:v", "0"] if codec == "libvpx-vp9" else ["-movflags", "+faststart"]
    quality = ["-sws_flags", "area", "-crf", str(VIDEO_CRF), *container]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=len(frames) / seconds, codec=codec,
                                         quality=None, macro_block_size=2, output_params=quality,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def write_animation(frames: np.ndarray, stem: Path, seconds: float = SLIDE_SECONDS,
                    video_suffix: str = ".mp4") -> tuple[list[Path], list[str]]:
    """``<stem>.gif`` and ``<stem><video_suffix>``; a video that cannot be written is a note, not an error."""
    paths = [write_gif(frames, stem.with_name(f"{stem.name}.gif"), seconds)]
    notes = []
    try:
        paths.append(write_video(frames, stem.with_name(f"{stem.name}{video_suffix}"), seconds))
    except VideoUnavailableError as err:
        notes.append(str(err))
    return paths, notes


def explanation_panel(method: str, explanation, index: int = 0) -> PathPanel | None:
    """Image ``index``'s path images from ``explain(..., frames=N)`` as a panel; None without frames."""
    from magig_core.attribution import method_spec
    from magig_core.attribution.registry import method_color
    from magig_core.metrics import path_positions
    from magig_core.viz import to_uint8

    if explanation.frames is None or explanation.frames.shape[1] == 0:
        return None
    gradients = maps = None
    if explanation.gradient_frames is not None:
        gradients, maps = feature_rows(explanation.gradient_frames[index].detach().float().cpu().numpy(),
                                       explanation.contribution_frames[index].detach().float().cpu().numpy())
    return PathPanel(
        label=method_spec(method).label,
        color=method_color(method),
        frames=np.stack([to_uint8(frame) for frame in explanation.frames[index]]),
        t=path_positions(explanation.num_path_points, explanation.frame_indices).numpy(),
        probs=explanation.frame_probs[index].detach().double().cpu().numpy(),
        gradients=gradients,
        maps=maps,
    )


def feature_rows(gradient_frames: np.ndarray, contribution_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps [F,H,W,3] of |∇F| at each frame (one scale for all of them: where the gradients are large
    shows) and of the map collected up to each frame (on the final map's scale: the last one is the map)."""
    from magig_core.viz import heatmap, robust_max, saliency

    gradients = [saliency(g) for g in gradient_frames]
    partial = [saliency(m) for m in np.cumsum(contribution_frames.astype(np.float64), axis=0)]
    gradient_max, map_max = robust_max(gradients), robust_max(partial[-1:])
    return (np.stack([heatmap(g, gradient_max) for g in gradients]),
            np.stack([heatmap(m, map_max) for m in partial]))
