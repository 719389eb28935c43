"""The autoencoder-fidelity ladder: one autoencoder whose latent codes are rounded ever more coarsely.

Rung ``<name>-q<Δ>`` (e.g. ``taef2-q1``) encodes as Δ·round(E(x)/Δ) and decodes with the autoencoder's own
decoder: same architecture, same weights, no download, and reconstruction quality falls as Δ grows (TAEF2's
raw latents have a standard deviation of about 0.85 on the bundled CIFAR-10 images). What degrades is
where the codes of the images sit, so how far a decoded latent path ends from the images it must reach;
what the decoder can draw between them is unchanged. The rounding happens in ``encode`` only, which no
method differentiates, so every gradient through ``decode`` stays exact.
"""

from __future__ import annotations

import re

import torch
from torch import nn

TAEF2_LADDER = ("taef2", "taef2-q0.5", "taef2-q1", "taef2-q2", "taef2-q4")  # PSNR ≈ 32, 30, 26.5, 21, 15 dB
_RUNG = re.compile(r"^(?P<base>.+)-q(?P<step>\d+(?:\.\d+)?)$")


def quantized_rung(name: str, known: set[str] | frozenset[str]) -> tuple[str, float] | None:
    """``(base, Δ)`` for a rung name whose base is one of the ``known`` autoencoders, else None."""
    match = _RUNG.match(name)
    if match is None or match["base"] not in known:
        return None
    step = float(match["step"])
    if step <= 0:
        raise ValueError(f"{name}: the rounding step after '-q' must be positive")
    return match["base"], step


class QuantizedLatent(nn.Module):
    """An autoencoder whose ``encode`` rounds each latent value to the nearest multiple of ``step``."""

    def __init__(self, base: nn.Module, step: float, *, name: str) -> None:
        super().__init__()
        self.base = base
        self.step = step
        self.name = name

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.step * torch.round(self.base.encode(images) / self.step)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.base.decode(latents)
