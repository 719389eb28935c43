"""Shared fixtures: tiny offline models that every engine test can afford on two CPU cores."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("MAGIG_WARM_EXAMPLES", "off")  # tests decide themselves what is cached


class IdentityAutoencoder(nn.Module):
    """Latent = the image itself: a latent method must then behave exactly like its pixel twin."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images.clone()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


def small_cnn(num_classes: int = 5, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.Softplus(), nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.Tanh(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes),
    )
    return net.to(dtype).eval().requires_grad_(False)


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    from magig_core.models.diffusers_autoencoder import DiffusersAutoencoder

    torch.manual_seed(seed)
    model = AutoencoderKL(
        block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4, layers_per_block=1,
    )
    return DiffusersAutoencoder(model, "kl", name="tiny")


@pytest.fixture
def cnn() -> nn.Module:
    return small_cnn()


@pytest.fixture(scope="session")
def vae():
    return tiny_vae()


@pytest.fixture
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(3, 3, 16, 20, generator=generator)
