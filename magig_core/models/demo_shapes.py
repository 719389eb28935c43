"""The bundled demo-shapes models: a small CNN classifier and a small diffusers ``AutoencoderKL``.

Both are rebuilt from the architecture recorded in ``card.json`` (class names included) and loaded strictly
from safetensors, so the bundled weights work offline from any working directory. The demo world
(``magig_core.demo``) trains them and builds on this module; the zoo never imports the demo world.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file
from torch import nn

from magig_core.bundled import bundled_path
from magig_core.models.diffusers_autoencoder import DiffusersAutoencoder
from magig_core.models.image_classifier import ImageClassifier

DEFAULT_WEIGHTS_DIR = bundled_path("models", "demo-shapes")
CARD_FILE = "card.json"
CLASSIFIER_FILE = "classifier.safetensors"
AUTOENCODER_FILE = "autoencoder.safetensors"
NORMALIZATION = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}

CLASSIFIER_LAYOUT: dict[str, Any] = {"widths": [24, 48, 96, 96], "pooling": "max"}  # + num_classes: the world's
AUTOENCODER_CONFIG: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [16, 32, 64],
    "layers_per_block": 1,
    "latent_channels": 4,
    "norm_num_groups": 16,
    "sample_size": 64,
    "mid_block_add_attention": False,
}

POOLING = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}


class DemoCNN(nn.Module):
    """Conv-BN-ReLU blocks with 2× max-pooling, global pooling, and a linear head ``fc``.

    Global *max* pooling suits a world with one class object per image: each feature reports its best
    location, so marks spread over the image cannot add up to class evidence. With average pooling,
    the dark specks a partially decoded latent path leaves everywhere summed to a confident wrong class
    (≈ 20 logits) and guided paths localized at chance. The head sits directly on the pooled features
    so that ``fc``'s input is the image representation IG2 needs.
    """

    def __init__(self, widths: list[int], num_classes: int, pooling: str = "max") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {sorted(POOLING)}, got {pooling!r}")
        self.pool = POOLING[pooling](1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def build_classifier_network(config: dict[str, Any]) -> DemoCNN:
    return DemoCNN(list(config["widths"]), int(config["num_classes"]), str(config.get("pooling", "avg")))


def build_autoencoder_model(config: dict[str, Any] = AUTOENCODER_CONFIG) -> AutoencoderKL:
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return AutoencoderKL(**kwargs)


def as_image_classifier(network: DemoCNN, image_size: int, class_names: tuple[str, ...]) -> ImageClassifier:
    return ImageClassifier(
        network,
        mean=NORMALIZATION["mean"],
        std=NORMALIZATION["std"],
        class_names=class_names,
        input_size=(image_size, image_size),
        name="demo-shapes",
        representation_module=network.fc,
    )


def as_diffusers_autoencoder(model: AutoencoderKL) -> DiffusersAutoencoder:
    return DiffusersAutoencoder(model, kind="kl", name="demo-shapes")


def read_card(weights_dir: str | Path | None = None) -> dict[str, Any]:
    """The model card written by ``demo-train`` (architecture, data version, measured figures)."""
    path = Path(weights_dir or DEFAULT_WEIGHTS_DIR) / CARD_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no demo model card at {path}; train the demo models with "
            f"`python -m magig_core demo-train --out {path.parent}`"
        )
    return json.loads(path.read_text())


def _weights(weights_dir: Path, filename: str) -> dict[str, torch.Tensor]:
    path = weights_dir / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"demo weights {path} are missing; regenerate them with "
            f"`python -m magig_core demo-train --out {weights_dir}`"
        )
    return {k: v.float() for k, v in load_file(str(path)).items()}


def load_demo_classifier(weights_dir: str | Path | None = None, device: str | torch.device | None = None):
    """The bundled demo-shapes classifier as an ``ImageClassifier`` (class names included)."""
    weights_dir = Path(weights_dir or DEFAULT_WEIGHTS_DIR)
    card = read_card(weights_dir)
    network = build_classifier_network(card["classifier"]["config"])
    network.load_state_dict(_weights(weights_dir, CLASSIFIER_FILE), strict=True)
    classifier = as_image_classifier(network, int(card["image_size"]), tuple(card["class_names"]))
    return classifier.to(device) if device is not None else classifier


def load_demo_autoencoder(weights_dir: str | Path | None = None, device: str | torch.device | None = None):
    """The bundled demo-shapes ``AutoencoderKL`` behind the ``DiffusersAutoencoder`` contract."""
    weights_dir = Path(weights_dir or DEFAULT_WEIGHTS_DIR)
    card = read_card(weights_dir)
    model = build_autoencoder_model(card["autoencoder"]["config"])
    model.load_state_dict(_weights(weights_dir, AUTOENCODER_FILE), strict=True)
    autoencoder = as_diffusers_autoencoder(model)
    return autoencoder.to(device) if device is not None else autoencoder
