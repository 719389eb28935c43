"""Coordinate spaces a path can live in: the classifier's normalized pixels, or an autoencoder's latent.

A space maps coordinates to normalized classifier input. Pixel GIG and MA-GIG are the same guided rule
in two spaces; IG and EIG the same straight line.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from magig_core.attribution.model import NormalizedModel


@runtime_checkable
class Autoencoder(Protocol):
    """What a latent method needs: differentiable maps between [0,1] images and a deterministic latent."""

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


class PixelSpace:
    is_identity = True

    def __init__(self, model: NormalizedModel) -> None:
        self.model = model

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.normalize(images)

    def decode(self, coords: torch.Tensor) -> torch.Tensor:
        return coords


class LatentSpace:
    """Coordinates are raw (unscaled) latents; decoding goes through the decoder and the normalization."""

    is_identity = False

    def __init__(self, model: NormalizedModel, autoencoder: Autoencoder, dtype: torch.dtype) -> None:
        self.model = model
        self.autoencoder = autoencoder
        self.dtype = dtype

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(images).to(self.dtype)

    def decode(self, coords: torch.Tensor) -> torch.Tensor:
        with self.model.autocast():
            decoded = self.autoencoder.decode(coords)
        return self.model.normalize(decoded.to(self.dtype))
