"""Reconstruction PSNR and the off-manifold curve against values computed by hand."""

from __future__ import annotations

import math

import torch

from magig_core.metrics import PixelRmseDistance, off_manifold_curve, reconstruction_psnr
from tests.conftest import IdentityAutoencoder


class Shrinking:
    """decode(encode(x)) = 0.8 x + 0.1: a known reconstruction error of 0.2 x − 0.1 per element."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images * 2

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return 0.4 * latents + 0.1


def test_reconstruction_psnr_is_ten_log_one_over_the_mse() -> None:
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    expected = [10 * math.log10(1 / float((0.2 * x - 0.1).pow(2).mean())) for x in images.double()]
    torch.testing.assert_close(reconstruction_psnr(Shrinking(), images), torch.tensor(expected, dtype=torch.float64))
    assert torch.isinf(reconstruction_psnr(IdentityAutoencoder(), images)).all()


def test_off_manifold_curve_measures_each_frame_against_its_own_reconstruction() -> None:
    """Catches comparing frames to the input (or to a reconstruction of the input) instead of to their own."""
    frames = torch.rand(2, 5, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    frames[:, 2] = 1.3  # a decoded frame may overshoot: it is clamped to 1 before encoding, as for display
    curve = off_manifold_curve(frames, Shrinking(), PixelRmseDistance(), frame_indices=torch.tensor([0, 3, 5, 8, 9]),
                               num_points=10)
    clamped = frames.clamp(0, 1).double()
    expected = (0.2 * clamped - 0.1).pow(2).flatten(2).mean(2).sqrt()
    torch.testing.assert_close(curve.values, expected)
    torch.testing.assert_close(curve.t, torch.tensor([0, 3, 5, 8, 9], dtype=torch.float64) / 9)
    identity = off_manifold_curve(frames, IdentityAutoencoder(), PixelRmseDistance())
    assert identity.values.abs().max() == 0
