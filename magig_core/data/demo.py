"""The demo world as an evaluation set: seeded, rendered on the fly, with its true labels."""

from __future__ import annotations

from magig_core.data.datasets import ImageItem, ImageSet

DEMO_EVAL_SEED = 1  # the demo models' held-out seed (training uses seed 0)


def demo_set(num_images: int, *, size: int = 64, seed: int = DEMO_EVAL_SEED) -> ImageSet:
    """``num_images`` held-out demo scenes; sample i of a seed is the same whatever ``num_images`` is."""
    from magig_core.demo.shapes import CLASS_NAMES
    from magig_core.demo.world import generate

    if num_images < 1:
        raise ValueError("the demo set needs at least one image (--limit)")
    samples = generate(num_images, seed, size=size)
    items = [ImageItem(f"demo-shapes/seed{seed}/{i:06d}", int(label)) for i, label in enumerate(samples.labels)]
    images = {item.image_id: image for item, image in zip(items, samples.images, strict=True)}
    return ImageSet("demo-shapes", items, CLASS_NAMES, size=size, loader=lambda item: images[item.image_id])
