"""Evaluation image sets: local folders (ImageFolder, CSV, ImageNet, Pet, Flowers) and bundled CIFAR-10."""

from magig_core.data.datasets import (
    ORDERS,
    PAPER_IMAGE_SIZE,
    DatasetError,
    ImageItem,
    ImageSet,
    cifar10_test,
    flowers102,
    image_folder,
    image_tensor,
    imagenet_val,
    labels_csv,
    oxford_pet,
)
from magig_core.data.ordering import paper_shuffle_order, train_test_indices

__all__ = [
    "ORDERS",
    "PAPER_IMAGE_SIZE",
    "DatasetError",
    "ImageItem",
    "ImageSet",
    "cifar10_test",
    "flowers102",
    "image_folder",
    "image_tensor",
    "imagenet_val",
    "labels_csv",
    "oxford_pet",
    "paper_shuffle_order",
    "train_test_indices",
]
