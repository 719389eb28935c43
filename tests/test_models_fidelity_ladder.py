"""The autoencoder-fidelity ladder: TAEF2 with its latent codes rounded to multiples of Δ."""

from __future__ import annotations

import pytest
import torch

from magig_core.data import datasets
from magig_core.metrics.manifold import reconstruction_psnr
from magig_core.models import load_autoencoder
from magig_core.models.fidelity_ladder import TAEF2_LADDER, quantized_rung


def test_a_rung_rounds_the_codes_and_keeps_the_decoder() -> None:
    """Catches rounding in the decoder (which would zero every latent gradient) or a rung built on another base."""
    exact, rung = load_autoencoder("taef2"), load_autoencoder("taef2-q2")
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    codes = exact.encode(images)
    assert torch.equal(rung.encode(images), 2 * torch.round(codes / 2))
    latent = codes.clone().requires_grad_(True)
    rung.decode(latent).sum().backward()
    expected = codes.clone().requires_grad_(True)
    exact.decode(expected).sum().backward()
    assert torch.equal(latent.grad, expected.grad)
    assert quantized_rung("sd2-q1", {"sd2"}) == ("sd2", 1.0) and quantized_rung("owner/name-q1", {"sd2"}) is None
    with pytest.raises(ValueError, match="positive"):
        quantized_rung("taef2-q0", {"taef2"})


def test_reconstruction_falls_down_the_ladder_on_bundled_images() -> None:
    """The ladder's promise: each rung reconstructs the bundled CIFAR-10 images worse than the one above."""
    image_set = datasets.cifar10_test(None, size=32)
    images = torch.stack([image_set.load(i) for i in range(3)])
    psnr = [float(reconstruction_psnr(load_autoencoder(name), images).mean()) for name in TAEF2_LADDER]
    assert psnr == sorted(psnr, reverse=True) and psnr[0] - psnr[-1] > 10
