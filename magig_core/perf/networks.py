"""The models benchmarks run on: random-weight stand-ins for the paper's networks, and the bundled real ones.

Random weights cost exactly what trained ones cost, so the paper's architectures can be timed without
downloads; the bundled TAEF2 + CIFAR-10 ResNet-56 pair is what a talk runs offline.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from magig_core.models.diffusers_autoencoder import DiffusersAutoencoder
from magig_core.models.image_classifier import ImageClassifier


def sd_config_autoencoder(tiny: bool = False) -> DiffusersAutoencoder:
    """Stable Diffusion's VAE architecture with random weights (or a tiny one for smoke tests)."""
    from diffusers import AutoencoderKL

    channels = (16, 32) if tiny else (128, 256, 512, 512)
    model = AutoencoderKL(
        block_out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        latent_channels=4, layers_per_block=1 if tiny else 2, norm_num_groups=8 if tiny else 32,
    )
    return DiffusersAutoencoder(model, "kl", name="sd-config-random")


def resnet18_classifier() -> ImageClassifier:
    from torchvision.models import resnet18

    network = resnet18(weights=None)
    return ImageClassifier(network, name="resnet18-random", representation_module=network.fc)


def random_pair(tiny: bool, device: torch.device) -> tuple[ImageClassifier, nn.Module]:
    """ResNet-18 and the SD-architecture VAE with random weights (seeded by the caller)."""
    return resnet18_classifier().to(device), sd_config_autoencoder(tiny).to(device)


def bundled_pair(device: torch.device) -> tuple[nn.Module, nn.Module]:
    """Private copies of the bundled CIFAR-10 ResNet-56 and TAEF2 (the zoo's cached ones stay untouched)."""
    from magig_core.models import load_autoencoder, load_classifier

    classifier = copy.deepcopy(load_classifier("cifar10-resnet56", device="cpu")).to(device)
    autoencoder = copy.deepcopy(load_autoencoder("taef2", device="cpu")).to(device)
    return classifier, autoencoder


def bundled_images(count: int, size: int) -> torch.Tensor:
    """The first ``count`` bundled CIFAR-10 test images (one per class in turn), [count,3,size,size] in [0,1]."""
    from magig_core.data.datasets import cifar10_test

    images = cifar10_test(size=size)
    return torch.stack([images.load(index) for index in range(count)])


def random_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed))
