"""Image loading and sanitizing: every odd file a user can upload becomes RGB or a clear error."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from magig_core.images import (
    MAX_ASPECT,
    MIN_SIDE,
    WORK_SIDE,
    ImageInputError,
    load_image,
    sanitize,
    to_tensor,
)


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_bytes(rows: Iterable[np.ndarray], width: int, height: int, channels: int, bit_depth: int) -> bytes:
    """A PNG written by hand (no filter, one IDAT), so tests can make files Pillow cannot write: 48-bit RGB,
    or 7000×7000 streamed row by row without ever holding the image."""
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    sample = ">u2" if bit_depth == 16 else "u1"
    compressor = zlib.compressobj(1)
    idat = b"".join(compressor.compress(b"\x00" + np.asarray(row).astype(sample).tobytes()) for row in rows)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat + compressor.flush())
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_rgb_png_passes_unchanged():
    array = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    loaded = load_image(encode(Image.fromarray(array)))
    assert loaded.image.mode == "RGB" and loaded.original_size == (30, 20)
    np.testing.assert_array_equal(np.asarray(loaded.image), array)
    assert loaded.notes == []


def test_grayscale_is_replicated_to_three_channels():
    gray = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    loaded = load_image(encode(Image.fromarray(gray, "L")))
    rgb = np.asarray(loaded.image)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], gray)
    assert any("Grayscale" in note for note in loaded.notes)


def test_rgba_transparent_pixels_become_white_not_hidden_colour():
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # hidden red under full transparency
    rgba[:8, :, 3] = 255  # top half opaque red
    loaded = load_image(encode(Image.fromarray(rgba, "RGBA")))
    rgb = np.asarray(loaded.image)
    np.testing.assert_array_equal(rgb[:8, 0], [[200, 0, 0]] * 8)
    np.testing.assert_array_equal(rgb[8:, 0], [[255, 255, 255]] * 8)
    assert any("Transparent" in note for note in loaded.notes)


def test_palette_with_transparency_is_composited():
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 255] + [10, 20, 30] * 255)
    palette.info["transparency"] = 0
    rgb = np.asarray(load_image(encode(palette)).image)
    np.testing.assert_array_equal(rgb[0, 0], [255, 255, 255])


def test_palette_gif_takes_first_frame_and_says_so():
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], disposal=2)
    loaded = load_image(buffer.getvalue())
    np.testing.assert_array_equal(np.asarray(loaded.image)[0, 0], [0, 0, 0])
    assert any("only the first" in note for note in loaded.notes)


def test_16_bit_grayscale_is_rescaled_not_clipped():
    values = np.array([[0, 32768], [65535, 16384]], dtype=np.uint16).repeat(8, 0).repeat(8, 1)
    loaded = load_image(encode(Image.fromarray(values)))
    rgb = np.asarray(loaded.image)[..., 0]
    assert rgb[0, 0] == 0 and rgb[0, 15] == 128 and rgb[15, 0] == 255
    assert any("8 bits" in note for note in loaded.notes)


def test_cmyk_jpeg_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    loaded = load_image(encode(cmyk, "JPEG", quality=100))
    red = np.asarray(loaded.image)[8, 8]
    assert red[0] > 230 and red[1] < 25 and red[2] < 25
    assert any("CMYK" in note for note in loaded.notes)


def upright_by_exif_spec(stored: np.ndarray, orientation: int) -> np.ndarray:
    """The displayed image by the EXIF definition of Orientation: where the stored row 0 and column 0 go.

    Written as index arithmetic from the specification's table, not with Pillow's transposes, so a loader
    that turns the wrong way (6 and 8 swapped, 5 and 7 swapped) or mirrors on the wrong axis disagrees.
    """
    h, w = stored.shape[:2]
    rows, cols = np.indices((w, h) if orientation >= 5 else (h, w))  # 5–8 swap width and height
    source = {
        1: (rows, cols),  # row 0 top, column 0 left
        2: (rows, w - 1 - cols),  # row 0 top, column 0 right
        3: (h - 1 - rows, w - 1 - cols),  # row 0 bottom, column 0 right
        4: (h - 1 - rows, cols),  # row 0 bottom, column 0 left
        5: (cols, rows),  # row 0 left, column 0 top
        6: (h - 1 - cols, rows),  # row 0 right, column 0 top
        7: (h - 1 - cols, w - 1 - rows),  # row 0 right, column 0 bottom
        8: (cols, w - 1 - rows),  # row 0 left, column 0 bottom
    }[orientation]
    return stored[source]


def _with_orientation(image: Image.Image, orientation: int) -> Image.Exif:
    exif = image.getexif()
    exif[274] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_shows_the_image_upright_in_png(orientation: int):
    """Every pixel of an asymmetric image lands where the EXIF definition puts it (lossless PNG: exact)."""
    stored = np.random.default_rng(orientation).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    image = Image.fromarray(stored)
    loaded = load_image(encode(image, "PNG", exif=_with_orientation(image, orientation)))
    np.testing.assert_array_equal(np.asarray(loaded.image), upright_by_exif_spec(stored, orientation))
    assert loaded.original_size == (20, 12)  # as stored in the file


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_shows_the_image_upright_in_jpeg(orientation: int):
    """Cameras write JPEG: a 2×3 grid of flat 8×8 blocks (one per JPEG block) survives the compression."""
    levels = np.array([[0, 50, 100], [150, 200, 250]], dtype=np.uint8)
    stored = np.repeat(np.repeat(levels, 8, 0), 8, 1)[..., None].repeat(3, 2)
    image = Image.fromarray(stored)
    exif = _with_orientation(image, orientation).tobytes()
    loaded = load_image(encode(image, "JPEG", quality=95, exif=exif))
    expected = upright_by_exif_spec(stored, orientation).astype(int)
    assert np.abs(np.asarray(loaded.image).astype(int) - expected).max() <= 8


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is a text file, not a picture", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ],
)
def test_unreadable_files_raise_a_clear_error(data, message):
    with pytest.raises(ImageInputError, match=message):
        load_image(data)


def test_truncated_image_data_is_reported_as_damaged():
    data = encode(Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageInputError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_tiny_images_are_rejected():
    with pytest.raises(ImageInputError, match=f"at least {MIN_SIDE}"):
        load_image(encode(Image.new("RGB", (1, 1))))


def test_huge_images_are_rejected_before_decoding():
    data = encode(Image.new("L", (8000, 8000)))
    with pytest.raises(ImageInputError, match="too large"):
        load_image(data)


def test_big_jpegs_are_decoded_at_reduced_scale_but_report_their_size():
    """4800 px is reduced by 4 (the smallest power of two reaching ≤ 2048): 1200×800, aspect kept."""
    loaded = load_image(encode(Image.new("RGB", (4800, 3200), (10, 200, 30)), "JPEG"))
    assert loaded.original_size == (4800, 3200)
    assert loaded.image.size == (1200, 800)
    assert np.abs(np.asarray(loaded.image)[5, 5].astype(int) - [10, 200, 30]).max() < 6


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor×factor blocks of an [H,W,C] array whose sides are multiples of factor."""
    h, w, c = values.shape
    return values.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def test_big_rgb_image_is_the_box_average_of_the_file():
    """4096 px wide: halved to WORK_SIDE exactly; each output pixel is the rounded mean of its 2×2 block."""
    array = np.random.default_rng(3).integers(0, 256, (384, 4096, 3), dtype=np.uint8)
    loaded = load_image(encode(Image.fromarray(array)))
    assert loaded.image.size == (WORK_SIDE, 192) and loaded.original_size == (4096, 384)
    assert np.abs(np.asarray(loaded.image) - block_mean(array.astype(float), 2)).max() <= 0.5 + 1e-9


def test_big_palette_image_with_transparency_is_averaged_premultiplied():
    """Reduced strip by strip through RGBA; catches averaging unpremultiplied (the hidden red of transparent
    pixels would tint every edge) and strips pasted at the wrong rows."""
    rng = np.random.default_rng(4)
    indices = rng.integers(0, 4, (384, 4104), dtype=np.uint8)
    colours = np.array([[255, 0, 0], [0, 0, 255], [0, 160, 0], [30, 30, 30]], dtype=float)
    palette = Image.fromarray(indices, "P")
    palette.putpalette(colours.astype(np.uint8).flatten().tolist())
    palette.info["transparency"] = 0  # index 0: red, fully transparent
    loaded = load_image(encode(palette))
    assert loaded.image.size == (1026, 96)  # 4104 px > 2 × WORK_SIDE: reduced by 4
    alpha = (indices != 0).astype(float)[..., None]
    premultiplied = block_mean(alpha * colours[indices], 4)
    on_white = premultiplied + 255 * (1 - block_mean(alpha, 4))
    assert np.abs(np.asarray(loaded.image) - on_white).max() <= 2
    assert any("Transparent" in note for note in loaded.notes)


def test_big_16_bit_grayscale_is_averaged_before_it_is_rescaled():
    values = np.random.default_rng(5).integers(0, 65536, (384, 4096), dtype=np.uint16)
    loaded = load_image(encode(Image.fromarray(values)))
    expected = block_mean(values[..., None].astype(float), 2)[..., 0] / 65535 * 255
    assert loaded.image.size == (WORK_SIDE, 192)
    assert np.abs(np.asarray(loaded.image)[..., 1] - expected).max() <= 1
    assert any("High-bit-depth I;16" in note for note in loaded.notes)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_is_reduced_to_8_bits_and_says_so(channels: int):
    """Pillow opens 48/64-bit PNGs as plain 8-bit RGB(A); only the header tells that precision was lost."""
    samples = np.random.default_rng(channels).integers(0, 65536, (16, 16, channels), dtype=np.uint16)
    samples[..., 3:] = 65535  # opaque, so the colours are compared as they are
    loaded = load_image(png_bytes(samples, 16, 16, channels, bit_depth=16))
    assert np.abs(np.asarray(loaded.image) - samples[..., :3] / 257).max() <= 1
    assert f"16-bit {'RGB' if channels == 3 else 'RGBA'} PNG: reduced to 8 bits per channel." in loaded.notes


def test_8_bit_png_from_the_same_writer_has_no_depth_note():
    samples = np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    loaded = load_image(png_bytes(samples, 16, 16, 3, bit_depth=8))
    np.testing.assert_array_equal(np.asarray(loaded.image), samples)
    assert loaded.notes == []


def test_extreme_aspect_ratio_is_rejected_and_moderate_one_noted():
    with pytest.raises(ImageInputError, match="aspect ratio"):
        load_image(encode(Image.new("RGB", (int(16 * (MAX_ASPECT + 1)), 16))))
    loaded = load_image(encode(Image.new("RGB", (200, 40))))
    assert any("squashed" in note for note in loaded.notes)


def test_missing_path_and_none_are_clear_errors(tmp_path):
    with pytest.raises(ImageInputError, match="does not exist"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageInputError, match="No image"):
        load_image(None)


def test_numpy_inputs_of_every_common_dtype():
    as_float = np.full((12, 12, 3), 0.5, dtype=np.float32)
    assert np.asarray(load_image(as_float).image)[0, 0].tolist() == [128, 128, 128]
    as_uint16 = np.full((12, 12, 3), 65535, dtype=np.uint16)
    assert np.asarray(load_image(as_uint16).image)[0, 0].tolist() == [255, 255, 255]
    with pytest.raises(ImageInputError, match="HxW"):
        load_image(np.zeros((12, 12, 5), dtype=np.uint8))


@pytest.mark.parametrize("size", [(64, 48), (224, 224), (20, 250)])
def test_to_tensor_resizes_without_crop_like_torchvision_on_pil(size: tuple[int, int]):
    """The paper's pipeline is torchvision's Resize on PIL images: bilinear, antialiased, no crop.

    Compared with torchvision itself, down- and upsampling and both axes swapped: nearest or unantialiased
    resampling, a crop, (W, H) taken for (H, W), or a missing /255 all miss by far more than the tolerance.
    The tolerance is one 8-bit step (1/255): torchvision may round an intermediate differently if it
    resizes in float, and nothing finer is meaningful on 8-bit images.
    """
    array = np.random.default_rng(2).integers(0, 256, (40, 100, 3), dtype=np.uint8)
    image = sanitize(Image.fromarray(array)).image
    tensor = to_tensor(image, size)
    assert tensor.shape == (1, 3, *size) and tensor.dtype == torch.float32
    reference = TF.resize(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    expected = TF.to_tensor(reference)
    torch.testing.assert_close(tensor[0], expected, atol=1 / 255 + 1e-6, rtol=0)



HUGE_SIDE = 7000  # the largest square under MAX_PIXELS
DECODE_FLOOR_MB = HUGE_SIDE * HUGE_SIDE * 4 / 2**20  # Pillow decodes RGB into 4 bytes per pixel: 187 MB
WORKING_MB = 1750 * 1750 * 4 / 2**20  # the reduced image a caller keeps: 12 MB
LOADS = 3  # one per worker thread, as the app's request threads do
SLACK_MB = 20  # decoder buffers, the interpreter's own growth, allocator granularity
MEASURE_RSS = """
import json, sys, threading
from pathlib import Path
from magig_core.images import load_image

def megabytes(field):
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
    return int(line.split()[1]) / 1024

load_image(sys.argv[2])  # imports the format plugins
base = megabytes("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from here
kept = []
for _ in range(int(sys.argv[3])):
    worker = threading.Thread(target=lambda: kept.append(load_image(sys.argv[1])))
    worker.start()
    worker.join()
print(json.dumps({"peak": megabytes("VmHWM") - base, "held": megabytes("VmRSS") - base,
                  "sizes": [loaded.image.size for loaded in kept]}))
"""


def huge_png() -> bytes:
    """7000×7000 RGB with gradients and a checkerboard, written row by row (4 MB, never held in memory)."""
    x = np.arange(HUGE_SIDE)
    rows = (
        np.stack([x * 255 // HUGE_SIDE, np.full_like(x, y * 255 // HUGE_SIDE), (x // 64 + y // 64) % 2 * 255],
                 axis=1)
        for y in range(HUGE_SIDE)
    )
    return png_bytes(rows, HUGE_SIDE, HUGE_SIDE, 3, bit_depth=8)


def huge_jpeg() -> bytes:
    image = Image.new("RGB", (HUGE_SIDE, HUGE_SIDE), (40, 120, 200))
    image.paste((250, 200, 10), (1000, 1000, 5000, 3000))
    return encode(image, "JPEG", quality=90)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures RSS through Linux /proc")
@pytest.mark.parametrize(("make", "decode_mb"), [(huge_png, DECODE_FLOOR_MB), (huge_jpeg, 0)])
def test_huge_image_costs_one_decode_and_leaves_only_the_working_image(make, decode_mb, tmp_path):
    """Fresh interpreter, the image loaded 3 times in successive threads with every result kept.

    A PNG may peak at one full-size decode (PNG cannot be decoded smaller), a JPEG not even that (decoded
    at 1/4 scale); what stays is the three 1750×1750 working images. Measured here: PNG peak +227 MB,
    held +35 MB; JPEG peak and held +36 MB. Before decoding was bounded: PNG peak and held +945 MB (every
    load kept its full-size image), JPEG +60 MB. Without handing freed pages back to the OS, each thread's
    malloc arena kept its PNG decode: held +238 MB.
    """
    fmt = "png" if make is huge_png else "jpg"
    huge, small = tmp_path / f"huge.{fmt}", tmp_path / f"small.{fmt}"
    huge.write_bytes(make())
    Image.new("RGB", (64, 64), (1, 2, 3)).save(small)
    result = subprocess.run(
        [sys.executable, "-c", MEASURE_RSS, str(huge), str(small), str(LOADS)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["sizes"] == [[1750, 1750]] * LOADS
    assert measured["held"] < LOADS * WORKING_MB + SLACK_MB, measured
    assert measured["peak"] < decode_mb + LOADS * WORKING_MB + SLACK_MB, measured
