"""Image loading and sanitizing: every odd file a user can upload becomes RGB or a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from magig_core.images import MAX_ASPECT, MIN_SIDE, ImageInputError, load_image, sanitize, to_tensor


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


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


def test_exif_orientation_is_applied():
    array = np.zeros((10, 20, 3), dtype=np.uint8)  # wide image stored sideways
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[274] = 6  # rotate 90° clockwise for display
    loaded = load_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert loaded.image.size == (10, 20)


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
    loaded = load_image(encode(Image.new("RGB", (4800, 3200), (10, 200, 30)), "JPEG"))
    assert loaded.original_size == (4800, 3200)
    assert 1024 <= min(loaded.image.size) < 3200 and loaded.image.size[0] / loaded.image.size[1] == 1.5
    assert np.abs(np.asarray(loaded.image)[5, 5].astype(int) - [10, 200, 30]).max() < 6


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


def test_to_tensor_resizes_without_crop_like_torchvision_on_pil():
    array = np.random.default_rng(2).integers(0, 256, (40, 100, 3), dtype=np.uint8)
    image = sanitize(Image.fromarray(array)).image
    tensor = to_tensor(image, (64, 48))
    assert tensor.shape == (1, 3, 64, 48) and tensor.dtype == torch.float32
    expected = np.asarray(image.resize((48, 64), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    np.testing.assert_allclose(tensor[0].permute(1, 2, 0).numpy(), expected, atol=1e-7)
