"""Classifier construction: paper architectures, Oxford heads, user checkpoints, labels, registry, cache."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.datasets import Flowers102

from magig_core.models import (
    ImageClassifier,
    WeightsUnavailableError,
    clear_model_cache,
    cpu_seconds_per_step,
    default_device,
    list_autoencoders,
    list_classifiers,
    load_classifier,
    set_cache_size,
)
from magig_core.models.model_cache import DEFAULT_CACHE_SIZE

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# Oxford-IIIT Pet breeds as they appear in its file names (cats capitalised).
PET_BREEDS = [
    "Abyssinian",
    "Bengal",
    "Birman",
    "Bombay",
    "British_Shorthair",
    "Egyptian_Mau",
    "Maine_Coon",
    "Persian",
    "Ragdoll",
    "Russian_Blue",
    "Siamese",
    "Sphynx",
    "american_bulldog",
    "american_pit_bull_terrier",
    "basset_hound",
    "beagle",
    "boxer",
    "chihuahua",
    "english_cocker_spaniel",
    "english_setter",
    "german_shorthaired",
    "great_pyrenees",
    "havanese",
    "japanese_chin",
    "keeshond",
    "leonberger",
    "miniature_pinscher",
    "newfoundland",
    "pomeranian",
    "pug",
    "saint_bernard",
    "samoyed",
    "scottish_terrier",
    "shiba_inu",
    "staffordshire_bull_terrier",
    "wheaten_terrier",
    "yorkshire_terrier",
]


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_model_cache()
    yield
    set_cache_size("classifier", DEFAULT_CACHE_SIZE)
    clear_model_cache()


def images(size: int = 64) -> torch.Tensor:
    return torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def representation_width(classifier: ImageClassifier, size: int = 64) -> int:
    seen: list[torch.Tensor] = []
    handle = classifier.representation_module.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        classifier(images(size))
    handle.remove()
    return seen[0].flatten(1).shape[1]


@functools.cache
def oxford_reference(arch: str, classes: int) -> nn.Module:
    """The paper's fine-tuned layouts, built independently from torchvision.

    See docs/models.md, "Oxford fine-tuned checkpoints".
    """
    torch.manual_seed(1)
    if arch == "resnet18":
        net = torchvision.models.resnet18()
        net.fc = nn.Linear(512, classes)
    elif arch == "inception":
        net = torchvision.models.googlenet(aux_logits=False, transform_input=True, init_weights=False)
        net.fc = nn.Linear(1024, classes)
    else:
        net = torchvision.models.vgg16()
        net.classifier = nn.Sequential(
            nn.Linear(25088, 150), nn.BatchNorm1d(150), nn.ReLU(), nn.Dropout(0.5), nn.Linear(150, classes)
        )
        net.classifier[1].running_mean.uniform_(-1, 1)
        net.classifier[1].running_var.uniform_(0.5, 2)
    return net.eval()


@pytest.mark.parametrize(
    ("name", "width", "module"),
    [("resnet18", 512, "fc"), ("vgg16", 25088, "classifier"), ("inception", 1024, "fc")],
)
def test_paper_architectures_with_random_weights(name: str, width: int, module: str) -> None:
    classifier = load_classifier(name, pretrained=False, device="cpu")
    categories = torchvision.models.get_model_weights(
        {"inception": "googlenet"}.get(name, name)
    ).IMAGENET1K_V1
    assert classifier.class_names == categories.meta["categories"] and classifier.num_classes == 1000
    assert classifier.input_size == (256, 256)
    assert classifier.representation_module is getattr(classifier.network, module)
    assert representation_width(classifier) == width
    assert not classifier.training and not any(p.requires_grad for p in classifier.parameters())
    if name == "inception":
        assert classifier.network.transform_input is True
        assert classifier.network.aux1 is None and classifier.network.aux2 is None


@pytest.mark.parametrize(
    ("arch", "dataset", "classes"),
    [
        ("resnet18", "pet", 37),
        ("inception", "flowers", 102),
        ("vgg16", "pet", 37),
    ],
)
def test_oxford_checkpoint_loads_and_matches_the_reference(arch, dataset, classes, tmp_path: Path) -> None:
    reference = oxford_reference(arch, classes)
    path = tmp_path / f"{arch}_best.pt"
    torch.save({"model_state_dict": reference.state_dict(), "epoch": 7}, path)
    classifier = load_classifier(f"{arch}-{dataset}", weights=path, device="cpu")
    assert classifier.num_classes == classes
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(classifier(x), reference((x - MEAN) / STD))
    if arch == "inception":
        assert classifier.network.transform_input is True


def test_oxford_checkpoint_is_found_in_the_authors_folder_layout(tmp_path: Path) -> None:
    reference = oxford_reference("resnet18", 102)
    folder = tmp_path / "checkpoints" / "classifier_flowers"
    folder.mkdir(parents=True)
    torch.save({"model_state_dict": reference.state_dict()}, folder / "resnet18_best.pt")
    classifier = load_classifier("resnet18-flowers", weights=tmp_path, device="cpu")
    torch.testing.assert_close(classifier.network.fc.weight, reference.fc.weight)


@pytest.mark.parametrize(
    ("name", "arch", "classes"),
    [
        ("resnet18-pet", "resnet18", 102),
        ("inception-pet", "inception", 10),
        ("vgg16-flowers", "vgg16", 37),
    ],
)
def test_oxford_heads_reject_wrong_shapes(name: str, arch: str, classes: int, tmp_path: Path) -> None:
    path = tmp_path / "wrong.pt"
    torch.save({"model_state_dict": oxford_reference(arch, classes).state_dict()}, path)
    with pytest.raises(ValueError, match="does not fit"):
        load_classifier(name, weights=path, device="cpu")


def test_oxford_class_names() -> None:
    pet = load_classifier("resnet18-pet", pretrained=False, device="cpu")
    assert pet.class_names == sorted(PET_BREEDS) and len(pet.class_names) == 37
    assert pet.class_names[:12] == sorted(PET_BREEDS[:12])  # capitalised cat breeds first
    flowers = load_classifier("resnet18-flowers", pretrained=False, device="cpu")
    assert flowers.class_names == Flowers102.classes


def test_oxford_without_weights_says_how_to_provide_them() -> None:
    with pytest.raises(
        WeightsUnavailableError, match=r"resnet18-pet[\s\S]*weights='/path/to/resnet18_best\.pt'"
    ):
        load_classifier("resnet18-pet", device="cpu")


def test_user_checkpoint_with_text_and_json_labels(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = torchvision.models.resnet18(num_classes=3).eval()
    path = tmp_path / "mine.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    (tmp_path / "labels.txt").write_text("cat\ndog\nbird\n")
    (tmp_path / "labels.json").write_text(json.dumps({"1": "dog", "0": "cat", "2": "bird"}))

    from_text = load_classifier("resnet18", weights=path, labels=tmp_path / "labels.txt", device="cpu")
    from_json = load_classifier("resnet18", weights=path, labels=tmp_path / "labels.json", device="cpu")
    assert from_text.class_names == from_json.class_names == ["cat", "dog", "bird"]
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(from_text(x), net((x - MEAN) / STD))

    inferred = load_classifier("resnet18", weights=path, device="cpu")
    assert inferred.class_names == ["class 0", "class 1", "class 2"]
    with pytest.raises(ValueError, match="num_classes=4 but 3 labels"):
        load_classifier("resnet18", weights=path, num_classes=4, labels=["a", "b", "c"], device="cpu")
    with pytest.raises(ValueError, match="does not fit"):
        load_classifier("resnet18", weights=path, num_classes=5, device="cpu")


def test_user_vgg_checkpoint_with_the_oxford_head_is_recognised(tmp_path: Path) -> None:
    reference = oxford_reference("vgg16", 37)
    path = tmp_path / "vgg.pt"
    torch.save(reference.state_dict(), path)
    classifier = load_classifier("vgg16", weights=path, device="cpu")
    assert classifier.num_classes == 37
    assert representation_width(classifier) == 25088


def test_num_classes_without_weights_is_refused() -> None:
    with pytest.raises(ValueError, match="weights="):
        load_classifier("resnet18", num_classes=10, device="cpu")


def test_any_torchvision_model_by_name() -> None:
    classifier = load_classifier("mobilenet_v3_small", pretrained=False, device="cpu")
    weights = torchvision.models.MobileNet_V3_Small_Weights.DEFAULT
    assert classifier.class_names == weights.meta["categories"]
    assert classifier.input_size == (224, 224)
    assert classifier.representation_module is classifier.network.classifier[-1]
    with torch.no_grad():
        assert classifier(images()).shape == (2, 1000)
    with pytest.raises(ValueError, match="unknown classifier 'resnet19'"):
        load_classifier("resnet19", pretrained=False, device="cpu")


def test_imagenet_weights_come_from_the_torchvision_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(3)
    net = torchvision.models.resnet18().eval()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(net.state_dict(), checkpoints / "resnet18-f37072fd.pth")
    classifier = load_classifier("resnet18", device="cpu")
    torch.testing.assert_close(classifier.network.fc.weight, net.fc.weight)


def test_local_file_replaces_the_download(tmp_path: Path) -> None:
    torch.manual_seed(4)
    net = torchvision.models.googlenet(aux_logits=True, transform_input=True, init_weights=False).eval()
    path = tmp_path / "googlenet.pth"
    torch.save(net.state_dict(), path)  # torchvision's pretrained files carry the auxiliary heads
    classifier = load_classifier("inception", weights=path, device="cpu")
    assert classifier.network.transform_input is True and classifier.network.aux1 is None
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(classifier(x), net((x - MEAN) / STD))


def test_half_precision_is_refused_on_cpu() -> None:
    with pytest.raises(ValueError, match="only supported on a GPU"):
        load_classifier("resnet18", pretrained=False, device="cpu", dtype=torch.bfloat16)


def test_default_device() -> None:
    assert default_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_cache_returns_the_same_instance_and_evicts_least_recently_used() -> None:
    set_cache_size("classifier", 2)
    a = load_classifier("resnet18", pretrained=False, labels=["a", "b"], device="cpu")
    assert load_classifier("resnet18", pretrained=False, labels=["a", "b"], device="cpu") is a
    b = load_classifier("resnet18", pretrained=False, labels=["x", "y"], device="cpu")
    assert (
        load_classifier("resnet18", pretrained=False, labels=["a", "b"], device="cpu") is a
    )  # a is now newest
    load_classifier("resnet18", pretrained=False, labels=["p", "q"], device="cpu")  # evicts b
    assert load_classifier("resnet18", pretrained=False, labels=["a", "b"], device="cpu") is a
    assert load_classifier("resnet18", pretrained=False, labels=["x", "y"], device="cpu") is not b


def test_registry_describes_every_named_model() -> None:
    classifiers = {info.name: info for info in list_classifiers()}
    autoencoders = {info.name: info for info in list_autoencoders()}
    assert {"resnet18", "vgg16", "inception", "vgg16-flowers", "inception-pet", "demo-shapes"} <= set(
        classifiers
    )
    assert set(autoencoders) == {"sd1", "sd2", "kd", "mar", "taesd", "taef2", "demo-shapes"}
    assert autoencoders["mar"].latent_shape == (16, 16, 16)
    assert all(autoencoders[n].latent_shape == (4, 32, 32) for n in ("sd1", "sd2", "kd", "taesd"))
    assert autoencoders["taesd"].cost_hint == "about 0.21 s per step on CPU; fine on CPU"
    assert autoencoders["kd"].gpu_recommended
    assert cpu_seconds_per_step("resnet18", "sd2") == pytest.approx(4.58)
    assert cpu_seconds_per_step("resnet18", "demo-shapes") is None


def test_demo_shapes_is_served_by_the_demo_package(tmp_path: Path, monkeypatch) -> None:
    import magig_core.models.demo_shapes as demo_models

    calls: list[tuple] = []
    network = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

    def fake_demo_classifier(weights_dir=None, device=None) -> ImageClassifier:
        calls.append((weights_dir, device))
        return ImageClassifier(
            network, class_names=["circle", "square"], input_size=(8, 8), name="demo-shapes"
        )

    monkeypatch.setattr(demo_models, "load_demo_classifier", fake_demo_classifier)
    classifier = load_classifier("demo-shapes", weights=tmp_path, device="cpu")
    assert classifier.class_names == ["circle", "square"]
    assert calls == [(tmp_path, torch.device("cpu"))]
    assert load_classifier("demo-shapes", weights=tmp_path, device="cpu") is classifier
