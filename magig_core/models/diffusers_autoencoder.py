"""The autoencoder contract and the wrapper that puts every diffusers autoencoder behind it.

All latent methods see one interface: ``encode`` maps [0,1] images to an unscaled, deterministic latent
(posterior mean, or the unquantized VQ latent) and ``decode`` maps a latent back to ≈[0,1] images, both
differentiable and never clamped (clamping would zero the gradients the path relies on).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

AutoencoderKind = Literal["kl", "vq", "tiny"]


class DiffusersAutoencoder(nn.Module):
    """Wraps ``AutoencoderKL`` / ``VQModel`` / ``AutoencoderTiny`` with the [0,1] ↔ [-1,1] maps.

    No latent scaling factor is applied: the paper's paths live in the raw latent space.
    """

    def __init__(self, model: nn.Module, kind: AutoencoderKind, *, name: str = "autoencoder") -> None:
        super().__init__()
        if kind not in ("kl", "vq", "tiny"):
            raise ValueError(f"unknown autoencoder kind {kind!r}; expected 'kl', 'vq' or 'tiny'")
        self.model = model
        self.kind = kind
        self.name = name
        self.eval()
        self.requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        scaled = (images * 2 - 1).to(self.dtype)
        encoded = self.model.encode(scaled)
        if self.kind == "kl":
            return encoded.latent_dist.mean
        return encoded.latents

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.dtype)
        if self.kind == "vq":
            decoded = self.model.decode(latents, force_not_quantize=True).sample
        else:
            decoded = self.model.decode(latents).sample
        return (decoded + 1) / 2

    def train(self, mode: bool = True) -> DiffusersAutoencoder:
        return super().train(False)
