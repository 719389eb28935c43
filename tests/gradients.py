"""A finite-difference check of autograd, for the decoders every latent path differentiates through."""

from __future__ import annotations

import copy

import torch
from torch import nn


def assert_decoder_gradient_matches_finite_differences(
    autoencoder: nn.Module, latents: torch.Tensor
) -> None:
    """For f(z) = ‖decode(z)‖², autograd's ∇f(z)·v against (f(z+εv) − f(z−εv)) / 2ε along a random v.

    ``isfinite`` and ``> 0`` accept a gradient that is detached, rescaled or taken through the wrong output;
    this does not. The differences run on a float64 copy with a small ε (ReLU decoders have kinks), so
    the tolerance only has to absorb the float32 gradient's rounding.
    """
    z = latents.detach().clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(autoencoder.decode(z).double().square().sum(), z)
    direction = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact, point, eps = copy.deepcopy(autoencoder).double(), latents.detach().double(), 1e-5
    with torch.no_grad():
        ahead = exact.decode(point + eps * direction).square().sum()
        behind = exact.decode(point - eps * direction).square().sum()
    numeric = (ahead - behind).item() / (2 * eps)
    analytic = (gradient.double() * direction).sum().item()
    assert abs(numeric) > 0, "the decoder does not change along the test direction"
    message = f"autograd {analytic:.7g} vs differences {numeric:.7g}"
    assert abs(analytic - numeric) <= 1e-3 * abs(numeric), message
