"""Evaluation image sets: ImageFolder trees, labels CSVs, the paper's presets and the bundled CIFAR-10 images.

Every set is an ordered list of (id, label, path) items plus class names; images are decoded lazily, so a
50 000-image folder costs only its file listing. Nothing is ever downloaded: the user points at data on
disk, or uses the images shipped in the package. Images are read as the app reads them (upright by their
EXIF orientation, RGB) and resized to size×size without cropping, as in the paper.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from magig_core.bundled import bundled_path
from magig_core.data.ordering import paper_shuffle_order, train_test_indices
from magig_core.errors import ArgumentError
from magig_core.images import load_image, to_tensor
from magig_core.models.cifar10 import CIFAR10_CLASSES

PAPER_IMAGE_SIZE = 256
CIFAR10_TEST_DIR = bundled_path("cifar10-test")
ORDERS = ("sorted", "paper")
_PET_LABEL = re.compile(r"_\d+\.jpg$")


class DatasetError(ArgumentError):
    """A dataset folder is missing or laid out differently than expected; the message says what to fix."""


@dataclass(frozen=True)
class ImageItem:
    image_id: str  # stable across machines: the path relative to the dataset root (or a generated name)
    label: int
    path: Path | None = None


def image_tensor(path: Path, size: int = PAPER_IMAGE_SIZE) -> torch.Tensor:
    """[3,size,size] in [0,1]: the file as the app reads it, resized without cropping.

    One loader for the app and the evaluation sets (``magig_core.images.load_image``: EXIF orientation, every
    mode to 8-bit RGB), so a photograph is explained and scored the same way up in both.
    """
    return to_tensor(load_image(path).image, (size, size))[0]


class ImageSet:
    """An ordered evaluation set; ``load(i)`` gives image i as a [3,H,W] tensor in [0,1]."""

    def __init__(
        self,
        name: str,
        items: Sequence[ImageItem],
        class_names: Sequence[str],
        *,
        size: int = PAPER_IMAGE_SIZE,
        loader: Callable[[ImageItem], torch.Tensor] | None = None,
    ) -> None:
        self.name = name
        self.items = list(items)
        self.class_names = list(class_names)
        self.size = size
        self._loader = loader

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> torch.Tensor:
        item = self.items[index]
        if self._loader is not None:
            return self._loader(item)
        assert item.path is not None
        return image_tensor(item.path, self.size)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        return ImageSet(self.name, [self.items[i] for i in indices], self.class_names, size=self.size,
                        loader=self._loader)

    def head(self, limit: int | None) -> ImageSet:
        return self if limit is None else self.subset(range(min(limit, len(self))))


def _existing_dir(root: str | Path, what: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetError(f"{what} folder {path} does not exist; pass the folder that holds the images")
    return path


def _ordered(image_set: ImageSet, order: str) -> ImageSet:
    if order not in ORDERS:
        raise DatasetError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
    return image_set if order == "sorted" else image_set.subset(paper_shuffle_order(len(image_set)))


def image_folder(root: str | Path, *, size: int = PAPER_IMAGE_SIZE, order: str = "sorted",
                 name: str = "imagefolder") -> ImageSet:
    """A torchvision ImageFolder tree: one sub-folder per class, class index = position of the sorted name.

    ``order="paper"`` applies the seeded shuffle the ImageNet tables were drawn with.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    root = _existing_dir(root, "image")
    try:
        classes, class_to_idx = find_classes(str(root))
        samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as err:
        raise DatasetError(f"{root} is not an ImageFolder tree (one sub-folder of images per class): {err}") from err
    items = [ImageItem(Path(p).relative_to(root).as_posix(), label, Path(p)) for p, label in samples]
    return _ordered(ImageSet(name, items, classes, size=size), order)


def imagenet_val(root: str | Path, *, size: int = PAPER_IMAGE_SIZE, order: str = "paper") -> ImageSet:
    """ILSVRC2012 validation in ImageFolder layout (one folder per synset); the paper used ``order="paper"``."""
    image_set = image_folder(root, size=size, order=order, name="imagenet")
    if len(image_set.class_names) != 1000:
        raise DatasetError(
            f"{root} has {len(image_set.class_names)} class folders; ImageNet validation needs the 1000 synset "
            "folders (sort the val images into them, e.g. with the usual valprep script)"
        )
    return image_set


def oxford_pet(root: str | Path, *, size: int = PAPER_IMAGE_SIZE, split: str = "test") -> ImageSet:
    """Oxford-IIIT Pet with the paper's split: 5 % held out by ``train_test_split(test_size=0.05, random_state=42)``.

    ``root`` is the dataset folder containing ``images/`` (or that folder itself). Every ``.jpg`` in it,
    sorted by path, is labelled by its file name without the trailing ``_<number>.jpg``; classes are the
    sorted unique names (case-sensitive, so the capitalised cat breeds come first).
    """
    root = _existing_dir(root, "Oxford-IIIT Pet")
    folder = root / "images" if (root / "images").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".jpg")
    breeds = [_PET_LABEL.sub("", p.name) for p in files]
    unnamed = [p.name for p, breed in zip(files, breeds, strict=True) if breed == p.name]
    if not files or unnamed:
        raise DatasetError(
            f"{folder} should hold the Pet images named <Breed_name>_<number>.jpg"
            + (f"; these do not follow it: {unnamed[:3]}" if unnamed else "; none found")
        )
    classes = sorted(set(breeds))
    index = {name: i for i, name in enumerate(classes)}
    items = [ImageItem(p.relative_to(root).as_posix(), index[b], p) for p, b in zip(files, breeds, strict=True)]
    splits = dict(zip(("train", "test"), train_test_indices(len(items)), strict=True))
    if split not in splits:
        raise DatasetError(f"unknown Pet split {split!r}; choose 'test' (the paper's evaluation set) or 'train'")
    return ImageSet("oxford-pet", [items[i] for i in splits[split]], classes, size=size)


def flowers102(root: str | Path, *, size: int = PAPER_IMAGE_SIZE, split: str = "val") -> ImageSet:
    """Oxford 102 Flowers in torchvision's layout (``flowers-102/jpg``, ``imagelabels.mat``, ``setid.mat``).

    The paper evaluates the first 500 images of the ``val`` split in file order (use ``--limit 500``).
    """
    from torchvision.datasets import Flowers102

    root = _existing_dir(root, "Oxford 102 Flowers")
    base = root / "flowers-102" if (root / "flowers-102").is_dir() else root
    needed = [base / "jpg", base / "imagelabels.mat", base / "setid.mat"]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        raise DatasetError(f"{base} lacks {', '.join(missing)}; it must hold jpg/, imagelabels.mat and setid.mat "
                           "as torchvision's Flowers102 expects")
    keys = {"train": "trnid", "val": "valid", "test": "tstid"}
    if split not in keys:
        raise DatasetError(f"unknown Flowers split {split!r}; choose one of {', '.join(keys)}")
    try:
        from scipy.io import loadmat
    except ImportError as err:
        raise DatasetError("reading Flowers102's .mat files needs scipy: pip install scipy") from err
    ids = loadmat(base / "setid.mat", squeeze_me=True)[keys[split]].tolist()
    labels = (loadmat(base / "imagelabels.mat", squeeze_me=True)["labels"] - 1).tolist()
    items = []
    for image_id in ids:
        path = base / "jpg" / f"image_{image_id:05d}.jpg"
        items.append(ImageItem(path.relative_to(root).as_posix(), int(labels[image_id - 1]), path))
    return ImageSet("flowers102", items, list(Flowers102.classes), size=size)


def cifar10_test(root: str | Path | None = None, *, size: int = 64) -> ImageSet:
    """CIFAR-10 test images in ImageFolder layout (default: the 500 bundled ones, 50 per class), interleaved.

    Image k of every class comes before image k+1 of any class, so any ``--limit`` is balanced over the
    classes. Folder names sort alphabetically into CIFAR-10's own class order, the bundled classifiers' order.
    """
    image_set = image_folder(CIFAR10_TEST_DIR if root is None else root, size=size, name="cifar10")
    if tuple(image_set.class_names) != CIFAR10_CLASSES:
        raise DatasetError(
            f"{root} should hold one folder per CIFAR-10 class ({', '.join(CIFAR10_CLASSES)}); "
            f"found {', '.join(image_set.class_names) or 'none'}"
        )
    labels = range(len(image_set.class_names))
    by_class = [[item for item in image_set.items if item.label == label] for label in labels]
    rounds = max(len(items) for items in by_class)
    interleaved = [items[k] for k in range(rounds) for items in by_class if k < len(items)]
    return ImageSet("cifar10", interleaved, image_set.class_names, size=size)


def labels_csv(root: str | Path, csv_path: str | Path, *, size: int = PAPER_IMAGE_SIZE,
               order: str = "sorted") -> ImageSet:
    """Images in any folder, labelled by a CSV with columns ``path`` (relative to ``root``) and ``label``.

    Labels are class indices, or class names (then indices follow the sorted names). ``order="sorted"``
    sorts by path; the CSV's own order is kept otherwise.
    """
    root = _existing_dir(root, "image")
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise DatasetError(f"labels file {csv_path} does not exist")
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DatasetError(f"{csv_path} needs a header with the columns 'path' and 'label'")
    raw = [row["label"].strip() for row in rows]
    if all(label.isdigit() for label in raw):
        labels = [int(label) for label in raw]
        classes = [str(i) for i in range(max(labels) + 1)]
    else:
        classes = sorted(set(raw))
        labels = [classes.index(label) for label in raw]
    items = []
    for row, label in zip(rows, labels, strict=True):
        path = root / row["path"].strip()
        if not path.is_file():
            raise DatasetError(f"{csv_path} lists {row['path']!r}, which is not a file under {root}")
        items.append(ImageItem(Path(row["path"].strip()).as_posix(), label, path))
    if order == "sorted":
        items.sort(key=lambda item: item.image_id)
    elif order != "csv":
        raise DatasetError(f"unknown order {order!r} for a labels CSV; choose 'sorted' or 'csv'")
    return ImageSet("labels-csv", items, classes, size=size)
