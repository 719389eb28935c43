"""Dataset presets on tiny fake folder trees: layouts, labels, orders and splits match their references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.datasets import Flowers102, ImageFolder

from magig_core.data import (
    DatasetError,
    cifar10_test,
    flowers102,
    image_folder,
    image_tensor,
    imagenet_val,
    labels_csv,
    oxford_pet,
    paper_shuffle_order,
    train_test_indices,
)
from magig_core.models.cifar10 import CIFAR10_CLASSES


def _save(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] = (23, 17)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode=mode).save(path)


@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    root = tmp_path / "val"
    names = {"n02": ["b.png", "a.jpg"], "n01": ["z.jpg", "sub/y.jpg"], "N00": ["c.JPEG"]}
    for i, (cls, files) in enumerate(sorted(names.items())):
        for j, name in enumerate(files):
            _save(root / cls / name, 10 * i + j, mode="L" if name.endswith("png") else "RGB")
    (root / "n01" / "notes.txt").write_text("not an image")
    return root


def test_paper_order_matches_a_seeded_dataloader() -> None:
    for n in (1, 7, 50):
        loader = torch.utils.data.DataLoader(
            list(range(n)), batch_size=1, shuffle=True, generator=torch.Generator().manual_seed(42)
        )
        assert paper_shuffle_order(n) == [int(batch) for batch in loader]


def test_train_test_split_shape() -> None:
    train, test = train_test_indices(7390)
    assert len(test) == 370  # the paper's Pet evaluation set size
    assert sorted(train + test) == list(range(7390))
    assert test != sorted(test)  # kept in the split's own (shuffled) order
    with pytest.raises(ValueError, match="strictly between"):
        train_test_indices(10, test_size=1.0)


def test_train_test_split_matches_scikit_learn() -> None:
    sklearn_model_selection = pytest.importorskip("sklearn.model_selection")
    for n in (21, 400, 7390):
        train, test = sklearn_model_selection.train_test_split(list(range(n)), test_size=0.05, random_state=42)
        assert train_test_indices(n) == (train, test)


def test_image_folder_matches_torchvision(folder_tree: Path) -> None:
    ours = image_folder(folder_tree, size=16)
    theirs = ImageFolder(str(folder_tree))
    assert ours.class_names == theirs.classes == ["N00", "n01", "n02"]
    assert [(str(i.path), i.label) for i in ours.items] == [(p, y) for p, y in theirs.samples]
    assert [i.image_id for i in ours.items] == ["N00/c.JPEG", "n01/z.jpg", "n01/sub/y.jpg", "n02/a.jpg", "n02/b.png"]
    shuffled = image_folder(folder_tree, order="paper")
    assert [i.image_id for i in shuffled.items] == [ours.items[k].image_id for k in paper_shuffle_order(5)]


def test_images_are_rgb_and_resized_without_crop(folder_tree: Path) -> None:
    path = folder_tree / "n02" / "b.png"  # grayscale, 23×17
    image = image_tensor(path, size=16)
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    reference = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])
    expected = reference(Image.open(path).convert("RGB"))
    torch.testing.assert_close(image, expected)
    assert torch.equal(image[0], image[1])  # grey stays grey after RGB conversion
    assert image_folder(folder_tree, size=16).load(0).shape == (3, 16, 16)


def test_an_exif_rotated_jpeg_loads_upright_through_the_dataset_loader(tmp_path: Path) -> None:
    """A camera JPEG stored sideways (EXIF orientation 6) is evaluated upright, as the app shows it.

    Catches a dataset loader that decodes the pixels as stored (``Image.open(...).convert("RGB")``): the
    upright picture is red above blue; stored sideways, its top row is half red, half blue.
    """
    upright = np.zeros((32, 16, 3), dtype=np.uint8)  # H=32, W=16: red top half, blue bottom half
    upright[:16, :, 0] = upright[16:, :, 2] = 255
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = stored.getexif()
    exif[274] = 6
    path = tmp_path / "cls" / "sideways.jpg"
    path.parent.mkdir()
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    image = image_folder(tmp_path, size=16).load(0)
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    assert (image[:, :4].permute(1, 2, 0) - red).abs().max() < 0.1
    assert (image[:, -4:].permute(1, 2, 0) - blue).abs().max() < 0.1


def test_imagenet_preset_requires_the_1000_synsets(folder_tree: Path) -> None:
    with pytest.raises(DatasetError, match="1000 synset"):
        imagenet_val(folder_tree)


def test_oxford_pet_split_labels_and_order(tmp_path: Path) -> None:
    breeds = ["Abyssinian", "Bengal", "american_bulldog", "great_pyrenees", "Russian_Blue"]
    images = tmp_path / "pets" / "images"
    files = []
    for k, breed in enumerate(breeds):
        for j in (1, 2, 10, 11, 100):
            name = f"{breed}_{j}.jpg"
            _save(images / name, 100 * k + j)
            files.append(name)
    (images / "Abyssinian_100.mat").write_bytes(b"\0")  # the real folder has stray .mat files
    pet = oxford_pet(tmp_path / "pets", size=8)
    assert pet.class_names == ["Abyssinian", "Bengal", "Russian_Blue", "american_bulldog", "great_pyrenees"]
    all_sorted = sorted(files)
    permutation = np.random.RandomState(42).permutation(len(all_sorted))
    expected_test = [all_sorted[i] for i in permutation[: math.ceil(0.05 * 25)]]
    assert [item.path.name for item in pet.items] == expected_test
    for item in pet.items:
        breed = item.path.name.rsplit("_", 1)[0]
        assert pet.class_names[item.label] == breed
    assert len(oxford_pet(images, split="train")) == 25 - len(pet)
    with pytest.raises(DatasetError, match="split"):
        oxford_pet(images, split="val")


def test_oxford_pet_rejects_foreign_names(tmp_path: Path) -> None:
    _save(tmp_path / "images" / "cat.jpg", 0)
    with pytest.raises(DatasetError, match=r"<Breed_name>_<number>\.jpg"):
        oxford_pet(tmp_path)


def test_flowers_val_split_matches_torchvision(tmp_path: Path, monkeypatch) -> None:
    scipy_io = pytest.importorskip("scipy.io")
    base = tmp_path / "flowers-102"
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 103, 30)
    ids = rng.permutation(np.arange(1, 31))
    for i in range(1, 31):
        _save(base / "jpg" / f"image_{i:05d}.jpg", i, size=(9, 9))
    scipy_io.savemat(base / "imagelabels.mat", {"labels": labels[None, :]})
    scipy_io.savemat(base / "setid.mat", {"trnid": ids[None, :10], "valid": ids[None, 10:22], "tstid": ids[None, 22:]})
    ours = flowers102(tmp_path, size=8)
    monkeypatch.setattr(Flowers102, "_check_integrity", lambda self: True)  # fake files fail torchvision's md5
    theirs = Flowers102(str(tmp_path), split="val")
    assert [i.path for i in ours.items] == list(theirs._image_files)
    assert [i.label for i in ours.items] == list(theirs._labels)
    assert ours.class_names == Flowers102.classes
    assert [i.image_id for i in ours.head(3).items] == [f"flowers-102/jpg/image_{k:05d}.jpg" for k in ids[10:13]]


def test_labels_csv_by_name_and_index(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.jpg", "c.jpg"):
        _save(tmp_path / "imgs" / name, len(name))
    (tmp_path / "names.csv").write_text("path,label\nb.jpg,dog\na.jpg,cat\nc.jpg,dog\n")
    by_name = labels_csv(tmp_path / "imgs", tmp_path / "names.csv")
    assert by_name.class_names == ["cat", "dog"]
    assert [(i.image_id, i.label) for i in by_name.items] == [("a.jpg", 0), ("b.jpg", 1), ("c.jpg", 1)]
    (tmp_path / "index.csv").write_text("path,label\nb.jpg,2\na.jpg,0\n")
    by_index = labels_csv(tmp_path / "imgs", tmp_path / "index.csv", order="csv")
    assert [(i.image_id, i.label) for i in by_index.items] == [("b.jpg", 2), ("a.jpg", 0)]
    (tmp_path / "bad.csv").write_text("file,class\na.jpg,0\n")
    with pytest.raises(DatasetError, match="'path' and 'label'"):
        labels_csv(tmp_path / "imgs", tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("path,label\nnope.jpg,0\n")
    with pytest.raises(DatasetError, match="not a file"):
        labels_csv(tmp_path / "imgs", tmp_path / "missing.csv")


def test_missing_folders_say_what_to_pass(tmp_path: Path) -> None:
    for loader in (image_folder, oxford_pet, flowers102):
        with pytest.raises(DatasetError, match="does not exist"):
            loader(tmp_path / "nowhere")
    (tmp_path / "flowers-102").mkdir()
    with pytest.raises(DatasetError, match=r"imagelabels\.mat"):
        flowers102(tmp_path)


def test_bundled_cifar10_is_class_interleaved_and_labelled_by_folder() -> None:
    """500 images, 50 per class; folder names sort into CIFAR-10's class order; image k of every class comes
    before image k+1 of any, so every prefix is balanced."""
    cifar = cifar10_test()
    assert len(cifar) == 500 and cifar.name == "cifar10"
    assert tuple(cifar.class_names) == CIFAR10_CLASSES == tuple(sorted(CIFAR10_CLASSES))
    assert [cifar.class_names[i.label] for i in cifar.items] == [i.path.parent.name for i in cifar.items]
    assert [i.image_id for i in cifar.items[:11]] == [f"{c}/0000.jpg" for c in CIFAR10_CLASSES] + ["airplane/0001.jpg"]
    for limit in (10, 30, 500):
        counts = np.bincount([i.label for i in cifar.head(limit).items], minlength=10)
        assert counts.tolist() == [limit // 10] * 10
    assert cifar.load(0).shape == (3, 64, 64) and cifar10_test(size=32).load(0).shape == (3, 32, 32)
    readme = (cifar.items[0].path.parents[1] / "README.md").read_text()
    assert "Krizhevsky" in readme and "research" in readme


def test_cifar10_folder_with_uneven_classes_and_wrong_folders(tmp_path: Path) -> None:
    counts = {name: 1 + index % 3 for index, name in enumerate(CIFAR10_CLASSES)}
    for name, count in counts.items():
        for k in range(count):
            _save(tmp_path / "c10" / name / f"{k:04d}.png", k, size=(32, 32))
    cifar = cifar10_test(tmp_path / "c10", size=8)
    assert len(cifar) == sum(counts.values())
    rounds = [[i.image_id for i in cifar.items if i.image_id.endswith(f"{k:04d}.png")] for k in range(3)]
    assert [i.image_id for i in cifar.items] == rounds[0] + rounds[1] + rounds[2]
    assert rounds[2] == [f"{name}/0002.png" for name, count in counts.items() if count == 3]
    (tmp_path / "c10" / "kangaroo").mkdir()
    _save(tmp_path / "c10" / "kangaroo" / "a.png", 0)
    with pytest.raises(DatasetError, match="one folder per CIFAR-10 class"):
        cifar10_test(tmp_path / "c10")
