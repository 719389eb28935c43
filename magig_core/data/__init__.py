"""Evaluation image sets from local folders (ImageFolder, labels CSV, ImageNet / Pet / Flowers presets)."""

from magig_core.data.datasets import (
    ORDERS,
    PAPER_IMAGE_SIZE,
    DatasetError,
    ImageItem,
    ImageSet,
    flowers102,
    image_folder,
    imagenet_val,
    labels_csv,
    load_image,
    oxford_pet,
)
from magig_core.data.ordering import paper_shuffle_order, train_test_indices

__all__ = [
    "ORDERS",
    "PAPER_IMAGE_SIZE",
    "DatasetError",
    "ImageItem",
    "ImageSet",
    "flowers102",
    "image_folder",
    "imagenet_val",
    "labels_csv",
    "load_image",
    "oxford_pet",
    "paper_shuffle_order",
    "train_test_indices",
]
