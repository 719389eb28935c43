"""Turn whatever a user hands over (a path, bytes, a PIL or numpy image) into a clean RGB image.

Uploads are untrusted: files may be empty, truncated, not images at all, or in modes the classifiers never
saw (16-bit, CMYK, palette with transparency). Every failure becomes an ``ImageInputError`` whose message
says what was wrong and what to do, so a UI can show it verbatim; every silent conversion is reported as a
note so the user knows the model did not see their file byte for byte.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

from magig_core.errors import MagigError
from magig_core.memory import trim_heap

MAX_PIXELS = 50_000_000  # ~7000×7000: decoding more would cost GBs of RAM per request
MIN_SIDE = 8  # below this an image carries too little structure for an attribution map
MAX_ASPECT = 16.0  # beyond this the paper's resize-without-crop squashes the content into stripes
WARN_ASPECT = 3.0
WORK_SIDE = 2048  # bigger images are reduced by a power of two until their longest side fits (models: ≤ 512)
STRIP_PIXELS = 1 << 20  # modes that need converting before reduction are converted this many pixels at a time
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as image viewers do
# EXIF orientation → the transpose that shows the image upright (the EXIF table, as image viewers apply it)
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes Image.reduce cannot average, and the mode each is averaged in instead (its information kept)
REDUCIBLE_MODE = {"1": "L", "P": "RGB", "PA": "RGBA", "I;16": "I", "I;16B": "I", "I;16L": "I", "I;16N": "I"}
PREMULTIPLIED = ("RGBA", "LA")  # Image.reduce averages these premultiplied, through a copy of its whole input
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageInputError(MagigError, ValueError):
    """An input that cannot be used as an image, with a message meant for the end user."""


@dataclass
class LoadedImage:
    """A sanitized 8-bit RGB image plus the conversions that produced it."""

    image: Image.Image
    original_size: tuple[int, int]  # (width, height) as stored in the file
    notes: list[str] = field(default_factory=list)


ImageSource = str | Path | bytes | Image.Image | np.ndarray


def load_image(source: ImageSource) -> LoadedImage:
    """Open and sanitize an image from a path, raw bytes, a PIL image or an HxW[xC] array."""
    if source is None:
        raise ImageInputError("No image was given. Upload, paste or capture an image, or pick an example.")
    if isinstance(source, np.ndarray):
        return sanitize(_array_to_pil(source))
    if isinstance(source, Image.Image):
        return sanitize(source)
    loaded = sanitize(_open_bytes(_read_bytes(source)))
    trim_heap()  # the full-resolution decode is garbage once sanitize returns
    return loaded


def sanitize(image: Image.Image) -> LoadedImage:
    """Check size limits, reduce to the working size, apply EXIF orientation, flatten transparency, 8-bit RGB.

    Only the decoder touches the full resolution: everything after it (orientation, conversion) works on the
    reduced image, so a 7000×7000 upload costs one decode, not several full-size copies.
    """
    width, height = image.size
    _check_geometry(width, height)
    notes: list[str] = []
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
        notes.append(f"The file has {image.n_frames} frames; only the first one is explained.")
    if _png_bit_depth(image) == 16 and image.mode not in HIGH_DEPTH_MODES:
        notes.append(f"16-bit {image.mode} PNG: reduced to 8 bits per channel.")
    source_mode = image.mode
    try:
        upright = _decode_upright(image)
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageInputError(
            f"The image data is damaged or truncated ({err}). Re-export the image (e.g. as PNG) and try again."
        ) from err
    rgb = _to_rgb(upright, notes, source_mode)
    if rgb is image:  # detach from the caller's object and from the file it may still hold open
        rgb = rgb.copy()
    if max(width, height) / min(width, height) > WARN_ASPECT:
        notes.append(
            f"The image is {width}×{height}; it is resized to the classifier's square input without cropping, "
            "so its content is squashed. Crop it to a squarer region for a more faithful explanation."
        )
    return LoadedImage(rgb, (width, height), notes)


def _decode_upright(image: Image.Image) -> Image.Image:
    """Decode (JPEGs directly at a reduced DCT scale), reduce to the working size, then turn upright."""
    if image.format == "JPEG":
        factor = _reduction_factor(image.size)
        image.draft("RGB", (max(1, image.width // factor), max(1, image.height // factor)))
    image.load()
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    reduced = _reduce(image, _reduction_factor(image.size))
    transpose = ORIENTATION_TRANSPOSE.get(orientation)
    return reduced if transpose is None else reduced.transpose(transpose)


def _reduction_factor(size: tuple[int, int]) -> int:
    """The smallest power of two that brings the longest side to at most ``WORK_SIDE``."""
    return 1 << max(0, math.ceil(math.log2(max(size) / WORK_SIDE)))


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Box-average ``factor``×``factor`` blocks; modes that must be converted first go strip by strip."""
    if factor == 1:
        return image
    mode = _reducible_mode(image)
    if mode == image.mode and mode not in PREMULTIPLIED:
        return image.reduce(factor)
    out = Image.new(mode, (math.ceil(image.width / factor), math.ceil(image.height / factor)))
    rows = factor * max(1, STRIP_PIXELS // (image.width * factor))
    for top in range(0, image.height, rows):
        strip = image.crop((0, top, image.width, min(top + rows, image.height))).convert(mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def _reducible_mode(image: Image.Image) -> str:
    """The mode to average ``image`` in: its own where Image.reduce handles it, else one losing nothing."""
    if image.mode == "P" and "transparency" in image.info:
        return "RGBA"
    return REDUCIBLE_MODE.get(image.mode, image.mode)


def _png_bit_depth(image: Image.Image) -> int | None:
    """Bit depth from the PNG header (IHDR byte 24): Pillow decodes 16-bit RGB(A) straight to 8 bits."""
    file = getattr(image, "fp", None)
    if image.format != "PNG" or file is None or getattr(file, "closed", False):
        return None
    position = file.tell()
    try:
        file.seek(24)
        depth = file.read(1)
    finally:
        file.seek(position)
    return depth[0] if depth else None


def to_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """[1,3,H,W] float in [0,1], resized to ``size`` = (H, W) without cropping (the paper's pipeline).

    PIL's bilinear resize is what torchvision's ``Resize`` applies to PIL images, antialiasing included.
    """
    height, width = size
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _read_bytes(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"The file {path.name!r} does not exist. Upload the image again.")
        data = path.read_bytes()
    if not data:
        raise ImageInputError("The file is empty (0 bytes). Upload an image file such as PNG or JPEG.")
    return data


def _open_bytes(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as err:
            raise ImageInputError(_too_large_message(err)) from err
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise ImageInputError(
                "The file is not an image this app can read (supported: PNG, JPEG, WebP, GIF, BMP, TIFF). "
                "Upload a different file."
            ) from err
    return image


def _too_large_message(detail: object) -> str:
    return (
        f"The image is too large ({detail}); the limit is {MAX_PIXELS / 1e6:.0f} megapixels. "
        "Downscale it (it is resized to the classifier's small input anyway) and upload it again."
    )


def _check_geometry(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageInputError(_too_large_message(f"{width}×{height} = {width * height / 1e6:.0f} megapixels"))
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(
            f"The image is only {width}×{height} pixels; at least {MIN_SIDE}×{MIN_SIDE} is needed. "
            "Upload a larger image."
        )
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise ImageInputError(
            f"The image is {width}×{height} (aspect ratio {aspect:.0f}:1); resizing it to a square input would "
            f"destroy its content. Crop it to an aspect ratio below {MAX_ASPECT:.0f}:1 and upload it again."
        )


def _to_rgb(image: Image.Image, notes: list[str], source_mode: str) -> Image.Image:
    """8-bit RGB, noting every conversion; ``source_mode`` is the file's mode, before any reduction."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in HIGH_DEPTH_MODES:
        notes.append(f"High-bit-depth {source_mode} image: rescaled to 8 bits per channel.")
        return _high_depth_to_rgb(np.asarray(image))
    if (mode == "P" and "transparency" in image.info) or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        notes.append("Transparent areas are shown on a white background.")
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    if mode in ("1", "L"):
        notes.append("Grayscale image: the gray channel is copied to R, G and B.")
    elif mode == "CMYK":
        notes.append("CMYK image: converted to RGB without a colour profile, so colours may shift slightly.")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise ImageInputError(
            f"Images in colour mode {mode!r} are not supported. Save the image as an RGB PNG or JPEG."
        ) from err


def _high_depth_to_rgb(values: np.ndarray) -> Image.Image:
    """Map integer or float samples to 8 bits: by the type's range when it fits, else by the data's."""
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ImageInputError("The image contains no finite pixel values. Upload a different image.")
    low, high = float(finite.min()), float(finite.max())
    if low >= 0 and high <= 1:
        scaled = values
    elif low >= 0 and high <= 65535:
        scaled = values / (65535.0 if high > 255 else 255.0)
    else:
        scaled = (values - low) / max(high - low, 1e-12)
    gray = (np.nan_to_num(np.clip(scaled, 0, 1)) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.size == 0:
        raise ImageInputError("The image is empty. Upload an image file such as PNG or JPEG.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageInputError(
            f"An image array must be HxW, HxWx3 or HxWx4, got shape {tuple(array.shape)}. Pass a proper image."
        )
    if array.dtype == np.uint8:
        return Image.fromarray(array, {2: "L", 3: "RGB", 4: "RGBA"}[array.shape[2] if array.ndim == 3 else 2])
    if array.ndim == 2:
        return _high_depth_to_rgb(array)
    if np.issubdtype(array.dtype, np.floating) and np.nanmin(array) >= 0 and np.nanmax(array) <= 1:
        array = np.nan_to_num(array) * 255 + 0.5
    elif array.dtype == np.uint16:
        array = array / 257.0
    clipped = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(clipped, "RGB" if clipped.shape[2] == 3 else "RGBA")
