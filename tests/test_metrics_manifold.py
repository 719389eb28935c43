"""Reconstruction PSNR and the off-manifold curve against values computed by hand."""

from __future__ import annotations

import math

import pytest
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


class ConvAutoencoder(torch.nn.Module):
    """A real convolution (whose results can depend on the batch size) with trainable weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(latents)


def _chunk_by_chunk(autoencoder: ConvAutoencoder, flat: torch.Tensor) -> torch.Tensor:
    from magig_core.metrics.manifold import CHUNK

    with torch.no_grad():
        return torch.cat([autoencoder.decode(autoencoder.encode(part.clamp(0, 1))).clamp(0, 1)
                          for part in flat.split(CHUNK)])


def test_reconstruction_on_several_cores_is_the_same_bits_as_chunk_by_chunk(monkeypatch) -> None:
    """Catches a parallel reconstruction that drops, reorders or re-batches chunks: the bits of a plain loop
    over chunks of ``CHUNK``, on one core and on four, and no autograd graph from the pool's threads."""
    from magig_core.metrics import manifold

    autoencoder = ConvAutoencoder()
    images = torch.rand(19, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    expected = _chunk_by_chunk(autoencoder, images)
    for cores in (1, 4):
        monkeypatch.setattr(manifold, "available_cores", lambda cores=cores: cores)
        rebuilt = manifold.reconstruct(autoencoder, images)
        assert torch.equal(rebuilt, expected) and not rebuilt.requires_grad


@pytest.mark.parametrize("batch", [1, 2])
def test_reconstructions_collected_during_a_walk_equal_those_computed_after_it(batch) -> None:
    """Catches frames reconstructed in another order or batching than the scoring's (one image: chunks go
    early; two: at the end), and reconstructions handed over for frames other than those recorded: a walk
    seen from the input side, or more walks than one."""
    from magig_core.metrics.manifold import WalkReconstructions

    autoencoder = ConvAutoencoder()
    frames = torch.rand(batch, 19, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 1.2  # some overshoot
    expected = _chunk_by_chunk(autoencoder, frames.flatten(0, 1))
    walk = WalkReconstructions(autoencoder, 19)
    for k in range(19):
        walk.add(frames[:, k])
    rebuilt = walk.for_frames(frames)
    assert rebuilt is not None and torch.equal(rebuilt, expected) and not rebuilt.requires_grad
    curve = off_manifold_curve(frames, autoencoder, PixelRmseDistance(), rebuilt=rebuilt)
    torch.testing.assert_close(curve.values, off_manifold_curve(frames, autoencoder, PixelRmseDistance()).values,
                               rtol=0, atol=0)

    backwards = WalkReconstructions(autoencoder, 19)
    for k in reversed(range(19)):
        backwards.add(frames[:, k])
    assert backwards.for_frames(frames) is None
    other = torch.rand(frames.shape, generator=torch.Generator().manual_seed(4))
    twice = WalkReconstructions(autoencoder, 19)  # averaged or perturbed runs: a second walk adds nothing
    for walk_frames in (frames, other):
        for k in range(19):
            twice.add(walk_frames[:, k])
    assert twice.for_frames(other) is None
    assert torch.equal(twice.for_frames(frames), expected)
