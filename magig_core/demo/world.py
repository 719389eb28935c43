"""The demo world: seeded RGB scenes with one class-defining shape, clutter, and the shape's exact mask.

Scene *parameters* are drawn per sample from ``numpy.random.default_rng([seed, index])``, so sample
``index`` of a seed is the same whatever batch it is generated in; *rendering* is vectorized torch over
whole batches, so thousands of images take seconds. Change ``DATA_VERSION`` whenever a change here alters
any pixel: the bundled models' card records the version they were trained on.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from magig_core.demo.shapes import BOUND_RADIUS, CLASS_NAMES, class_shape, open_arc, segment, thin_ellipse

DATA_VERSION = "demo-shapes-v1"
DEFAULT_SIZE = 64
MAX_DISTRACTORS = 5
_BLOTCH_GRID = 4
_MIN_CONTRAST = 0.3  # max-channel gap between the object's colour and the background under it
_RENDER_CHUNK = 256


@dataclass
class Scenes:
    """Everything needed to render a batch of N scenes (all tensors, first dimension N)."""

    labels: torch.Tensor  # [N] class index into CLASS_NAMES
    centres: torch.Tensor  # [N,2] object centre (x, y) in pixels
    radii: torch.Tensor  # [N] object's nominal radius in pixels
    angles: torch.Tensor  # [N] object rotation (radians)
    colours: torch.Tensor  # [N,3] object colour before the contrast check
    gradient: torch.Tensor  # [N,2,3] background gradient end colours
    gradient_angle: torch.Tensor  # [N]
    stripes: torch.Tensor  # [N,4] frequency (cycles per image), angle, phase, amplitude
    stripe_tint: torch.Tensor  # [N,3]
    blotches: torch.Tensor  # [N,3,G,G] low-frequency colour noise, upsampled when rendered
    pixel_noise: torch.Tensor  # [N,3,H,W]
    distractor_kind: torch.Tensor  # [N,D] 0 = absent, 1 = line, 2 = thin ellipse, 3 = open arc
    distractor_geometry: torch.Tensor  # [N,D,6] centre x, y, size, angle, shape parameter, half width
    distractor_colours: torch.Tensor  # [N,D,3]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, index: slice) -> Scenes:
        return Scenes(**{name: value[index] for name, value in self.__dict__.items()})


@dataclass
class Samples:
    """Rendered scenes: images in [0,1], labels, and each object's exact pixel mask."""

    images: torch.Tensor  # [N,3,H,W] float32 in [0,1]
    labels: torch.Tensor  # [N] int64
    masks: torch.Tensor  # [N,H,W] bool, True exactly where the class object was painted

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _palette_colour(rng: np.random.Generator) -> list[float]:
    """Saturated bright colours, sometimes near-black: the same palette for objects and distractors."""
    if rng.random() < 0.15:
        return [float(rng.uniform(0.0, 0.12))] * 3
    return list(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0)))


def _sample_one(seed: int, index: int, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, index])
    label = index % len(CLASS_NAMES)
    radius = rng.uniform(0.15, 0.27) * size
    margin = BOUND_RADIUS * radius + 1
    scale = size / DEFAULT_SIZE
    kinds = np.zeros(MAX_DISTRACTORS, dtype=np.int64)
    geometry = np.zeros((MAX_DISTRACTORS, 6))
    colours = np.zeros((MAX_DISTRACTORS, 3))
    for d in range(rng.integers(2, MAX_DISTRACTORS + 1)):
        kind = int(rng.integers(1, 4))
        kinds[d] = kind
        centre = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * math.pi)
        if kind == 1:  # line: size = length, no shape parameter
            extent, param = rng.uniform(0.15, 0.45) * size, 0.0
        elif kind == 2:  # thin ellipse: size = semi-major axis, parameter = aspect ratio
            extent, param = rng.uniform(0.05, 0.12) * size, rng.uniform(3.0, 5.0)
        else:  # open arc: size = radius, parameter = angular span
            extent, param = rng.uniform(0.06, 0.15) * size, rng.uniform(0.4, 0.85) * math.pi
        geometry[d] = [*centre, extent, angle, param, rng.uniform(0.5, 1.2) * scale]
        colours[d] = _palette_colour(rng)
    return {
        "labels": np.array(label),
        "centres": rng.uniform(margin, size - margin, 2),
        "radii": np.array(radius),
        "angles": np.array(rng.uniform(0, 2 * math.pi)),
        "colours": np.array(_palette_colour(rng)),
        "gradient": rng.uniform(0.2, 0.8, (2, 3)),
        "gradient_angle": np.array(rng.uniform(0, 2 * math.pi)),
        "stripes": np.array(
            [rng.uniform(2, 8), rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.1)]
        ),
        "stripe_tint": rng.uniform(0.3, 1.0, 3),
        "blotches": rng.normal(0, 0.06, (3, _BLOTCH_GRID, _BLOTCH_GRID)),
        "pixel_noise": rng.normal(0, 0.015, (3, size, size)),
        "distractor_kind": kinds,
        "distractor_geometry": geometry,
        "distractor_colours": colours,
    }


def sample_scenes(n: int, seed: int, *, size: int = DEFAULT_SIZE, start: int = 0) -> Scenes:
    """Scene parameters for samples ``start .. start+n-1`` of ``seed``; labels cycle, so classes balance."""
    if n < 0 or size < 16:
        raise ValueError(f"need n ≥ 0 and size ≥ 16, got n={n}, size={size}")
    rows = [_sample_one(seed, start + i, size) for i in range(n)]
    fields = {}
    for name in Scenes.__dataclass_fields__:
        stacked = np.stack([row[name] for row in rows]) if rows else np.zeros((0,))
        dtype = torch.int64 if name in ("labels", "distractor_kind") else torch.float32
        fields[name] = torch.as_tensor(stacked, dtype=dtype)
    return Scenes(**fields)


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    coords = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x[None], y[None]


def _local(x, y, centre_x, centre_y, angle, scale):
    """Pixel grid → a shape's local frame (rotated by -angle, divided by scale); args are [N] tensors."""
    dx, dy = x - centre_x[:, None, None], y - centre_y[:, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    s = scale[:, None, None]
    return (cos * dx + sin * dy) / s, (-sin * dx + cos * dy) / s


def _background(scenes: Scenes, size: int) -> torch.Tensor:
    x, y = _grid(size)
    angle = scenes.gradient_angle[:, None, None]
    t = (((x - size / 2) * torch.cos(angle) + (y - size / 2) * torch.sin(angle)) / size + 0.5).clamp(0, 1)
    start, end = scenes.gradient[:, 0, :, None, None], scenes.gradient[:, 1, :, None, None]
    image = start + (end - start) * t[:, None]
    freq, s_angle, phase, amplitude = (scenes.stripes[:, k, None, None] for k in range(4))
    wave = torch.sin(2 * math.pi * freq * (x * torch.cos(s_angle) + y * torch.sin(s_angle)) / size + phase)
    image = image + (amplitude * wave)[:, None] * scenes.stripe_tint[:, :, None, None]
    return image + F.interpolate(scenes.blotches, size=(size, size), mode="bilinear", align_corners=False)


def _paint_distractors(image: torch.Tensor, scenes: Scenes, size: int) -> torch.Tensor:
    x, y = _grid(size)
    for d in range(scenes.distractor_kind.shape[1]):
        kind = scenes.distractor_kind[:, d]
        cx, cy, extent, angle, param, half_width = scenes.distractor_geometry[:, d].unbind(1)
        direction = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * (extent / 2)[:, None]
        centre = torch.stack([cx, cy], 1)
        line = segment(x, y, centre - direction, centre + direction, half_width)
        u, v = _local(x, y, cx, cy, angle, extent)
        ellipse = thin_ellipse(u, v, param.clamp_min(1.0))
        arc = open_arc(u, v, half_width / extent.clamp_min(1e-6), param)
        k = kind[:, None, None]
        painted = ((k == 1) & line) | ((k == 2) & ellipse) | ((k == 3) & arc)
        image = torch.where(painted[:, None], scenes.distractor_colours[:, d, :, None, None], image)
    return image


def object_masks(scenes: Scenes, size: int = DEFAULT_SIZE) -> torch.Tensor:
    """[N,H,W] bool: the pixels each scene's class object covers."""
    x, y = _grid(size)
    u, v = _local(x, y, scenes.centres[:, 0], scenes.centres[:, 1], scenes.angles, scenes.radii)
    return class_shape(scenes.labels, u, v)


def _contrasting(colours: torch.Tensor, background: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Swap a colour that would blend into the background under it for near-black or near-white."""
    area = masks.sum((1, 2)).clamp_min(1)[:, None]
    under = (background * masks[:, None]).sum((2, 3)) / area
    blends = (colours - under).abs().amax(1) < _MIN_CONTRAST
    fallback = torch.where(under.mean(1, keepdim=True) > 0.5, 0.05, 0.95).expand(-1, 3)
    return torch.where(blends[:, None], fallback, colours)


def _render_chunk(scenes: Scenes, size: int, draw_object: bool) -> tuple[torch.Tensor, torch.Tensor]:
    backdrop = _paint_distractors(_background(scenes, size), scenes, size)
    masks = object_masks(scenes, size)
    image = backdrop
    if draw_object:
        colours = _contrasting(scenes.colours, backdrop, masks)
        image = torch.where(masks[:, None], colours[:, :, None, None], backdrop)
    return (image + scenes.pixel_noise).clamp(0, 1), masks


def render(scenes: Scenes, *, size: int = DEFAULT_SIZE, draw_object: bool = True) -> Samples:
    """Render scenes (the object is painted last and opaque, so its mask is exactly its pixels).

    ``draw_object=False`` renders the same scene without the class object (background, clutter and
    noise unchanged), which is what makes the mask independently checkable.
    """
    if len(scenes) and scenes.pixel_noise.shape[-1] != size:
        raise ValueError(f"scenes were sampled at size {scenes.pixel_noise.shape[-1]}, not {size}")
    images, masks = [], []
    for begin in range(0, len(scenes), _RENDER_CHUNK):
        chunk_images, chunk_masks = _render_chunk(
            scenes.select(slice(begin, begin + _RENDER_CHUNK)), size, draw_object
        )
        images.append(chunk_images)
        masks.append(chunk_masks)
    if not images:
        return Samples(
            torch.zeros(0, 3, size, size),
            torch.zeros(0, dtype=torch.int64),
            torch.zeros(0, size, size, dtype=torch.bool),
        )
    return Samples(torch.cat(images), scenes.labels.clone(), torch.cat(masks))


def generate(
    n: int, seed: int, *, size: int = DEFAULT_SIZE, start: int = 0, dtype: torch.dtype = torch.float32
) -> Samples:
    """``n`` class-balanced samples of the demo world for ``seed`` (samples ``start .. start+n-1``).

    ``dtype=torch.uint8`` stores images as 0..255 (4× less memory for large training sets).
    """
    parts = []
    for begin in range(0, n, _RENDER_CHUNK):
        chunk = render(
            sample_scenes(min(_RENDER_CHUNK, n - begin), seed, size=size, start=start + begin), size=size
        )
        if dtype == torch.uint8:
            chunk.images = (chunk.images * 255).round().to(torch.uint8)
        parts.append(chunk)
    if not parts:
        return render(sample_scenes(0, seed, size=size), size=size)
    return Samples(*(torch.cat([getattr(p, name) for p in parts]) for name in ("images", "labels", "masks")))


class DemoShapes(torch.utils.data.Dataset):
    """A fixed, pre-rendered set of ``n`` samples: ``(image, label, mask)`` per item."""

    def __init__(self, n: int, seed: int, *, size: int = DEFAULT_SIZE) -> None:
        self.samples = generate(n, seed, size=size)
        self.class_names = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        s = self.samples
        return s.images[index], int(s.labels[index]), s.masks[index]
