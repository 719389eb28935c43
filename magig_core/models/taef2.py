"""TAEF2, Ollin Boer Bohan's tiny autoencoder for the FLUX.2 latent space: latent paths that run offline.

A real autoencoder trained on natural images (8× down/up-sampling, 32 latent channels, ~1.3 M parameters
per half) that is cheap enough for 200-step paths on a CPU. The modules below keep the original
``nn.Sequential`` layout, so the upstream files (github madebyollin/taesd, ``taef2_encoder.pth`` /
``taef2_decoder.pth``, MIT) load strictly without any key conversion.

diffusers (checked with 0.42) cannot load these weights exactly: its ``AutoencoderTiny`` block has no
``pool`` branch (1×1 conv → GroupNorm → ReLU → 1×1 conv) that TAEF2's lowest-resolution blocks carry, so
those 24 tensors would be dropped and the network would differ.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from magig_core.bundled import bundled_path
from magig_core.errors import WeightsUnavailableError
from magig_core.models.checkpoints import load_strict, read_state_dict

LATENT_CHANNELS = 32
SCALE_FACTOR = 8
WIDTH = 64
ENCODER_FILE = "taef2_encoder.pth"
DECODER_FILE = "taef2_decoder.pth"
BUNDLED_DIR = bundled_path("models", "taef2")


def _conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class SoftClamp(nn.Module):
    """``tanh(z/3)·3``: bounds the decoder's input smoothly, so far-off latents still have gradients."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """Residual block ``ReLU(conv(x) + x)``; with ``pool``, first ``x = x + pool(x)``
    (1×1 convolutions through 256 GroupNorm-ed channels: a cheap per-pixel mixing the lowest level adds)."""

    def __init__(self, channels: int = WIDTH, *, pool: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, channels),
            nn.ReLU(),
            _conv(channels, channels),
        )
        self.pool = (
            nn.Sequential(
                nn.Conv2d(channels, 4 * channels, 1, bias=False),
                nn.GroupNorm(4, 4 * channels),
                nn.ReLU(),
                nn.Conv2d(4 * channels, channels, 1, bias=False),
            )
            if pool
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


def _downsample() -> nn.Conv2d:
    return _conv(WIDTH, WIDTH, stride=2, bias=False)


def _upsample() -> list[nn.Module]:
    return [nn.Upsample(scale_factor=2, mode="nearest"), _conv(WIDTH, WIDTH, bias=False)]


def _blocks(count: int, *, pool: bool = False) -> list[Block]:
    return [Block(pool=pool) for _ in range(count)]


def build_encoder() -> nn.Sequential:
    """[B,3,H,W] in [0,1] → raw latent [B,32,H/8,W/8]."""
    return nn.Sequential(
        _conv(3, WIDTH), *_blocks(1),
        _downsample(), *_blocks(3),
        _downsample(), *_blocks(3),
        _downsample(), *_blocks(3, pool=True),
        _conv(WIDTH, LATENT_CHANNELS),
    )  # fmt: skip


def build_decoder() -> nn.Sequential:
    """Raw latent [B,32,h,w] → ≈[0,1] images [B,3,8h,8w] (not clamped)."""
    return nn.Sequential(
        SoftClamp(), _conv(LATENT_CHANNELS, WIDTH), nn.ReLU(),
        *_blocks(3, pool=True), *_upsample(),
        *_blocks(3), *_upsample(),
        *_blocks(3), *_upsample(),
        *_blocks(1), _conv(WIDTH, 3),
    )  # fmt: skip


class TAEF2Autoencoder(nn.Module):
    """Frozen TAEF2 behind the autoencoder contract: ``encode`` [0,1] → raw latent, ``decode`` → ≈[0,1].

    Both directions are differentiable and never clamped (the decoder's output ranges about −0.08..1.08 on
    photographs; clamp only for display and image metrics).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, name: str = "taef2") -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.name = name
        self.eval()
        self.requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % SCALE_FACTOR or width % SCALE_FACTOR:
            raise ValueError(
                f"{self.name} needs images whose height and width are multiples of {SCALE_FACTOR}, got "
                f"{height}×{width}; resize them first (e.g. to 64×64 or 256×256)."
            )
        return self.encoder(images.to(self.dtype))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents.to(self.dtype))

    def train(self, mode: bool = True) -> TAEF2Autoencoder:
        return super().train(False)


def load_taef2(weights_dir: str | Path | None = None) -> TAEF2Autoencoder:
    """TAEF2 from a folder with ``taef2_encoder.pth`` and ``taef2_decoder.pth`` (default: the bundled copy).

    The files are fp16; they are loaded strictly into float32 modules.
    """
    folder = BUNDLED_DIR if weights_dir is None else Path(weights_dir).expanduser()
    parts = {ENCODER_FILE: build_encoder(), DECODER_FILE: build_decoder()}
    missing = [str(folder / filename) for filename in parts if not (folder / filename).is_file()]
    if missing:
        raise WeightsUnavailableError(
            "taef2", ", ".join(missing), "the file does not exist.", _remedies(weights_dir)
        )
    for filename, module in parts.items():
        load_strict(module, read_state_dict(folder / filename, model="taef2"), model=f"taef2's {filename}")
    return TAEF2Autoencoder(parts[ENCODER_FILE], parts[DECODER_FILE])


def _remedies(weights_dir: str | Path | None) -> list[str]:
    both = f"{ENCODER_FILE} and {DECODER_FILE}"
    if weights_dir is None:
        return [
            "reinstall MA-GIG Explorer (the files ship in the package), or",
            f"pass weights= a folder holding {both} (github madebyollin/taesd)",
        ]
    return [f"pass weights= a folder holding both {both} (github madebyollin/taesd)"]
