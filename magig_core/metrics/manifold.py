"""How close images are to an autoencoder's manifold: its reconstruction PSNR on the input, and the
distance of every path frame to its own reconstruction along the path (the "off-manifold" curve).

A frame the autoencoder reproduces well lies near the images it was trained on; a half-dark pixel
mixture (a pixel-space path) does not. Images are clamped to [0,1] before encoding and after decoding,
as for display: these are measurements of pictures, not part of any attribution path.
"""

from __future__ import annotations

import math

import torch

from magig_core.attribution.spaces import Autoencoder
from magig_core.metrics.path import PathCurve, path_positions
from magig_core.metrics.perceptual import FrameDistance


@torch.no_grad()
def reconstruct(autoencoder: Autoencoder, images01: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
    """D(E(x)) for [N,3,H,W] images in [0,1], clamped, on the images' device."""
    device = _device(autoencoder, images01.device)
    parts = []
    for part in images01.clamp(0, 1).split(batch_size):
        decoded = autoencoder.decode(autoencoder.encode(part.to(device)))
        parts.append(decoded.float().clamp(0, 1).to(images01.device, images01.dtype))
    return torch.cat(parts)


def reconstruction_psnr(autoencoder: Autoencoder, images01: torch.Tensor) -> torch.Tensor:
    """[B] PSNR in dB of each image's reconstruction (peak 1; inf for a perfect one)."""
    error = (reconstruct(autoencoder, images01).double() - images01.clamp(0, 1).double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / error)).where(error > 0, torch.full_like(error, math.inf)).cpu()


def off_manifold_curve(
    frames01: torch.Tensor,
    autoencoder: Autoencoder,
    distance: FrameDistance,
    *,
    frame_indices: torch.Tensor | None = None,
    num_points: int | None = None,
    batch_size: int = 32,
) -> PathCurve:
    """d(frame_k, D(E(frame_k))) for every frame: ``frames01`` [B,F,3,H,W]; lower means more natural."""
    b, f = frames01.shape[:2]
    flat = frames01.flatten(0, 1).clamp(0, 1)
    rebuilt = reconstruct(autoencoder, flat, batch_size=batch_size)
    values = torch.cat([distance(a, r) for a, r in zip(flat.split(batch_size), rebuilt.split(batch_size),
                                                       strict=True)])
    if frame_indices is None:
        t = path_positions(f)
    else:
        t = path_positions(num_points if num_points is not None else int(frame_indices.max()) + 1, frame_indices)
    return PathCurve(f"off-manifold {distance.name}", t, values.view(b, f), reason=distance.reason)


def _device(autoencoder: Autoencoder, fallback: torch.device) -> torch.device:
    parameters = getattr(autoencoder, "parameters", None)
    if parameters is not None:
        for tensor in parameters():
            return tensor.device
    return fallback
