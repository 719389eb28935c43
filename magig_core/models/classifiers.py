"""``load_classifier``: torchvision ImageNet models, the paper's Oxford fine-tunes and user checkpoints.

The paper's three architectures run at 256×256 with ImageNet normalization and no crop; GoogLeNet keeps
``transform_input=True`` (what its pretrained weights expect) even when built without them, which
torchvision would otherwise silently switch off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from magig_core.errors import WeightsUnavailableError
from magig_core.models.checkpoints import (
    STATE_DICT_SUFFIXES,
    file_identity,
    packaged_labels,
    read_labels,
    read_state_dict,
)
from magig_core.models.cifar10 import CHECKPOINTS as CIFAR10_CHECKPOINTS
from magig_core.models.cifar10 import load_cifar10_classifier
from magig_core.models.devices import resolve_device, resolve_dtype
from magig_core.models.downloads import torchvision_state_dict
from magig_core.models.image_classifier import IMAGENET_MEAN, IMAGENET_STD, ImageClassifier
from magig_core.models.model_cache import MODEL_CACHES
from magig_core.models.zoo import CLASSIFIERS

PAPER_INPUT_SIZE = (256, 256)
# The paper's names → torchvision builders, ImageNet weights, and the block whose input IG2 uses.
_PAPER_ARCHITECTURES = {
    "resnet18": ("resnet18", "ResNet18_Weights.IMAGENET1K_V1", "fc"),
    "vgg16": ("vgg16", "VGG16_Weights.IMAGENET1K_V1", "classifier"),
    "inception": ("googlenet", "GoogLeNet_Weights.IMAGENET1K_V1", "fc"),
}
_OXFORD_LABEL_FILES = {"pet": "oxford_pet_classes.txt", "flowers": "flowers102_classes.txt"}
# Builders whose pretrained weights expect transform_input=True and carry auxiliary heads.
_AUXILIARY_HEADS = {"googlenet": ("aux1", "aux2"), "inception_v3": ("AuxLogits",)}
_OXFORD_VGG_MARKER = "classifier.1.running_mean"  # the BatchNorm1d of the Oxford VGG head

Labels = str | Path | Sequence[str]


def load_classifier(
    name: str,
    *,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    labels: Labels | None = None,
    pretrained: bool = True,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> ImageClassifier:
    """A frozen, eval-mode classifier on [0,1] images, cached by its arguments.

    ``name``: ``resnet18`` / ``vgg16`` / ``inception`` (ImageNet), ``<arch>-pet`` / ``<arch>-flowers`` (the
    paper's Oxford fine-tunes, weights= their checkpoint), ``cifar10-resnet20`` / ``cifar10-resnet56``
    (bundled, 10 classes, 64×64 working size), ``demo-shapes``, or any torchvision classification model.
    ``weights``: a local state-dict file (or a folder holding it) instead of the download; with
    ``num_classes``/``labels`` it loads your own fine-tuned checkpoint. ``pretrained=False`` gives random
    weights (nothing is read or downloaded).
    """
    device_ = resolve_device(device)
    dtype_ = resolve_dtype(dtype, device_)
    labels_key = (
        tuple(labels) if labels is not None and not isinstance(labels, (str, Path)) else file_identity(labels)
    )
    key = (name, file_identity(weights), num_classes, labels_key, pretrained, str(device_), dtype_)

    def build() -> ImageClassifier:
        if name == "demo-shapes":
            from magig_core.models.demo_shapes import load_demo_classifier

            return load_demo_classifier(weights_dir=weights, device=device_).to(dtype_)
        if name in CIFAR10_CHECKPOINTS:
            if num_classes is not None or labels is not None:
                raise ValueError(f"{name} predicts the ten CIFAR-10 classes; num_classes/labels do not apply")
            classifier = load_cifar10_classifier(name, weights, pretrained=pretrained)
            return classifier.to(device=device_, dtype=dtype_)
        classifier = _build_classifier(name, weights, num_classes, labels, pretrained)
        return classifier.to(device=device_, dtype=dtype_)

    return MODEL_CACHES["classifier"].get_or_create(key, build)  # type: ignore[return-value]


def _split_name(name: str) -> tuple[str, str | None]:
    arch, _, dataset = name.partition("-")
    if dataset and arch in _PAPER_ARCHITECTURES and dataset in _OXFORD_LABEL_FILES:
        return arch, dataset
    return name, None


def _imagenet_weights(arch: str) -> Any:
    if arch in _PAPER_ARCHITECTURES:
        return torchvision.models.get_weight(_PAPER_ARCHITECTURES[arch][1])
    available = torchvision.models.list_models(module=torchvision.models)
    if arch not in available:
        named = ", ".join(CLASSIFIERS)
        raise ValueError(
            f"unknown classifier {arch!r}. Use one of {named}, or a torchvision classification model "
            f"({', '.join(available[:6])}, …; see torchvision.models.list_models())."
        )
    return torchvision.models.get_model_weights(arch).DEFAULT


def _build_classifier(
    name: str, weights: str | Path | None, num_classes: int | None, labels: Labels | None, pretrained: bool
) -> ImageClassifier:
    arch, dataset = _split_name(name)
    imagenet_weights = _imagenet_weights(arch)
    builder, _, representation = _PAPER_ARCHITECTURES.get(arch, (arch, None, None))
    state_dict = _state_dict(name, arch, dataset, imagenet_weights, weights, num_classes, labels, pretrained)

    class_names = _class_names(name, dataset, imagenet_weights, state_dict, num_classes, labels)
    oxford_vgg = arch == "vgg16" and (
        dataset is not None or (state_dict or {}).get(_OXFORD_VGG_MARKER) is not None
    )
    network = _build_network(
        builder, len(class_names), oxford_vgg_head=oxford_vgg, allocate=state_dict is None
    )
    if state_dict is not None:
        _load_strict(network, builder, state_dict, name)
    _drop_auxiliary_heads(network, builder)

    if arch in _PAPER_ARCHITECTURES:
        mean, std, input_size = IMAGENET_MEAN, IMAGENET_STD, PAPER_INPUT_SIZE
        representation_module = getattr(network, representation)  # type: ignore[arg-type]
    else:
        preset = imagenet_weights.transforms()
        mean, std = tuple(preset.mean), tuple(preset.std)
        input_size = (preset.crop_size[0], preset.crop_size[0])
        linears = [module for module in network.modules() if isinstance(module, nn.Linear)]
        representation_module = linears[-1] if linears else None
    return ImageClassifier(
        network,
        mean=mean,
        std=std,
        class_names=class_names,
        input_size=input_size,
        name=name,
        representation_module=representation_module,
    )


def _state_dict(
    name: str,
    arch: str,
    dataset: str | None,
    imagenet_weights: Any,
    weights: str | Path | None,
    num_classes: int | None,
    labels: Labels | None,
    pretrained: bool,
) -> dict[str, torch.Tensor] | None:
    """The weights to load, or None for random initialization."""
    if not pretrained:
        return None
    if weights is not None:
        return read_state_dict(
            _checkpoint_file(name, arch, dataset, imagenet_weights, Path(weights)), model=name
        )
    if dataset is not None:
        raise WeightsUnavailableError(
            name,
            CLASSIFIERS[name].source,
            "this fine-tuned checkpoint has no public download.",
            [
                f"pass weights='/path/to/{arch}_best.pt' (or the folder holding classifier_{dataset}/)",
                "or pretrained=False for random weights (for trying the interface only)",
            ],
        )
    if num_classes is not None or labels is not None:
        raise ValueError(
            f"{name}: num_classes/labels describe your own fine-tuned head, so pass its checkpoint with "
            "weights='/path/to/state_dict.pt' (or pretrained=False for random weights)."
        )
    return torchvision_state_dict(name, imagenet_weights)


def _checkpoint_file(name: str, arch: str, dataset: str | None, imagenet_weights: Any, path: Path) -> Path:
    """Accept a checkpoint file, or a folder holding it under one of its usual names."""
    path = path.expanduser()
    if not path.is_dir():
        return path
    if dataset is not None:
        stems = [arch, *([_PAPER_ARCHITECTURES[arch][0]] if arch == "inception" else [])]
        candidates = [
            folder / f"{stem}_best.pt"
            for stem in stems
            for folder in (
                path / f"classifier_{dataset}",
                path / "checkpoints" / f"classifier_{dataset}",
                path,
            )
        ]
    else:
        candidates = [path / imagenet_weights.url.rsplit("/", 1)[-1]]
    candidates += sorted(file for file in path.iterdir() if file.suffix in STATE_DICT_SUFFIXES)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsUnavailableError(
        name,
        str(path),
        "the folder holds no checkpoint.",
        [
            f"put one of {', '.join(str(c.relative_to(path)) for c in candidates[:3])} in it",
            "or pass weights= the checkpoint file itself",
        ],
    )


def _class_names(
    name: str,
    dataset: str | None,
    imagenet_weights: Any,
    state_dict: dict[str, torch.Tensor] | None,
    num_classes: int | None,
    labels: Labels | None,
) -> list[str]:
    if labels is not None:
        names = read_labels(labels)
    elif dataset is not None:
        names = packaged_labels(_OXFORD_LABEL_FILES[dataset])
    else:
        inferred = _head_width(state_dict) if state_dict is not None else None
        count = num_classes or inferred or len(imagenet_weights.meta["categories"])
        if count == len(imagenet_weights.meta["categories"]):
            return list(imagenet_weights.meta["categories"])
        return [f"class {index}" for index in range(count)]
    if num_classes is not None and num_classes != len(names):
        raise ValueError(f"{name}: num_classes={num_classes} but {len(names)} labels were given")
    return names


def _head_width(state_dict: dict[str, torch.Tensor]) -> int | None:
    """Number of classes of a checkpoint: the output width of its last 2-D weight (the final Linear)."""
    matrices = [value for key, value in state_dict.items() if key.endswith("weight") and value.ndim == 2]
    return matrices[-1].shape[0] if matrices else None


def _build_network(builder: str, num_classes: int, *, oxford_vgg_head: bool, allocate: bool) -> nn.Module:
    """The bare architecture; without ``allocate`` it lives on the meta device until weights are assigned,
    which skips initializing (e.g. VGG's 100M-parameter head) what the checkpoint overwrites anyway."""
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if builder in _AUXILIARY_HEADS:
        kwargs.update(transform_input=True, aux_logits=True, init_weights=False)
    with torch.device("cpu" if allocate else "meta"):
        network = torchvision.models.get_model(builder, weights=None, **kwargs)
        if oxford_vgg_head:
            network.classifier = nn.Sequential(
                nn.Linear(25088, 150),
                nn.BatchNorm1d(150),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(150, num_classes),
            )
    return network


def _load_strict(network: nn.Module, builder: str, state_dict: dict[str, torch.Tensor], name: str) -> None:
    """Strict load; auxiliary heads (unused at inference) may be present or absent in the checkpoint."""
    auxiliary = _AUXILIARY_HEADS.get(builder, ())
    if auxiliary and not any(key.startswith(f"{head}.") for key in state_dict for head in auxiliary):
        _drop_auxiliary_heads(network, builder)
    try:
        network.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as error:
        raise ValueError(
            f"the checkpoint does not fit {name!r} with {_head_width(state_dict) or '?'}-way output as built "
            f"here; check the architecture name and num_classes. Details: {error}"
        ) from error
    unset = [key for key, value in network.state_dict(keep_vars=True).items() if value.is_meta]
    if unset:
        raise ValueError(f"the checkpoint for {name!r} left {unset[:5]} without values")


def _drop_auxiliary_heads(network: nn.Module, builder: str) -> None:
    """Remove auxiliary classifiers as torchvision does for pretrained GoogLeNet; they never run in eval."""
    if builder not in _AUXILIARY_HEADS or not getattr(network, "aux_logits", False):
        return
    for head in _AUXILIARY_HEADS[builder]:
        setattr(network, head, None)
    network.aux_logits = False
