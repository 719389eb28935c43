"""The demo world generator: determinism, exact masks, balance, and geometry checked from outside."""

import math

import pytest
import torch

from magig_core.demo.shapes import CLASS_NAMES
from magig_core.demo.world import DATA_VERSION, DemoShapes, generate, render, sample_scenes


def test_same_seed_same_pixels_and_other_seeds_differ():
    a, b = generate(24, seed=3), generate(24, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    c = generate(24, seed=4)
    assert not torch.equal(a.images, c.images)
    assert (a.images - c.images).abs().flatten(1).amax(1).min() > 0.1  # every image differs, not just one


def test_a_sample_does_not_depend_on_its_batch():
    whole = generate(20, seed=5)
    tail = generate(8, seed=5, start=12)
    assert torch.equal(whole.images[12:], tail.images)
    assert torch.equal(whole.labels[12:], tail.labels)


def test_images_are_rgb_in_unit_range_and_size_is_configurable():
    s = generate(12, seed=0, size=96)
    assert s.images.shape == (12, 3, 96, 96) and s.images.dtype == torch.float32
    assert s.masks.shape == (12, 96, 96) and s.masks.dtype == torch.bool
    assert s.images.min() >= 0.0 and s.images.max() <= 1.0
    quantized = generate(12, seed=0, size=96, dtype=torch.uint8)
    assert quantized.images.dtype == torch.uint8
    assert torch.allclose(quantized.images.float() / 255, s.images, atol=0.5 / 255 + 1e-6)
    assert isinstance(DATA_VERSION, str) and DATA_VERSION


def test_classes_are_balanced():
    labels = generate(60, seed=1).labels
    assert torch.bincount(labels, minlength=len(CLASS_NAMES)).tolist() == [10] * len(CLASS_NAMES)
    counts = torch.bincount(generate(63, seed=2).labels, minlength=len(CLASS_NAMES))
    assert counts.max() - counts.min() <= 1


def test_mask_is_exactly_the_pixels_the_object_changes():
    """Render each scene with and without its object: the pixels that differ are the object."""
    scenes = sample_scenes(60, seed=11)
    with_object = render(scenes)
    without = render(scenes, draw_object=False)
    changed = (with_object.images != without.images).any(1)
    assert torch.equal(changed, with_object.masks)
    assert torch.equal(without.masks, with_object.masks)


def test_masks_are_nonempty_and_the_object_lies_inside_the_image():
    s = generate(60, seed=12)
    area = s.masks.flatten(1).sum(1)
    assert (area >= 30).all()
    border = s.masks[:, 0].any(1) | s.masks[:, -1].any(1) | s.masks[:, :, 0].any(1) | s.masks[:, :, -1].any(1)
    assert not border.any()


ANALYTIC_AREA = {  # shape area in units of the object's radius squared, from elementary geometry
    "disc": math.pi,
    "square": 1.5**2,  # half side 0.75
    "triangle": 3 * math.sqrt(3) / 4 * 1.1**2,  # equilateral, circumradius 1.1
    "cross": 2 * (0.6 * 2.0) - 0.6**2,  # two 0.6 × 2 bars, minus their overlap
    "star": 5 * 1.1 * 0.45 * math.sin(math.pi / 5),  # ten triangles between outer 1.1 and inner 0.45
    "ring": math.pi * (1 - 0.55**2),
}


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_every_class_shape_has_its_analytic_area(name):
    """Pixel counts match elementary-geometry areas, independent of the rasterizer's inside-tests."""
    scenes = sample_scenes(240, seed=13)
    masks = render(scenes).masks
    rows = scenes.labels == CLASS_NAMES.index(name)
    expected = ANALYTIC_AREA[name] * scenes.radii[rows] ** 2
    relative_error = (masks[rows].flatten(1).sum(1).float() - expected) / expected
    assert relative_error.abs().max() < 0.1
    assert relative_error.mean().abs() < 0.02


def test_dataset_items():
    data = DemoShapes(12, seed=9)
    image, label, mask = data[7]
    assert len(data) == 12 and data.class_names == CLASS_NAMES
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64)
    assert label == 7 % len(CLASS_NAMES)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="size"):
        generate(2, seed=0, size=8)
    scenes = sample_scenes(2, seed=0, size=64)
    with pytest.raises(ValueError, match="sampled at size 64"):
        render(scenes, size=32)
