"""How close images are to an autoencoder's manifold: its reconstruction PSNR on the input, and the
distance of every path frame to its own reconstruction along the path (the "off-manifold" curve).

A frame the autoencoder reproduces well lies near the images it was trained on; a half-dark pixel
mixture (a pixel-space path) does not. Images are clamped to [0,1] before encoding and after decoding,
as for display: these are measurements of pictures, not part of any attribution path.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch

from magig_core.attribution.spaces import Autoencoder
from magig_core.metrics.path import PathCurve, path_positions
from magig_core.metrics.perceptual import FrameDistance
from magig_core.runtime import available_cores

CHUNK = 8  # images per autoencoder pass: fixed, so a result never depends on how many workers computed it


def reconstruct(autoencoder: Autoencoder, images01: torch.Tensor, *, batch_size: int = CHUNK) -> torch.Tensor:
    """D(E(x)) for [N,3,H,W] images in [0,1], clamped, on the images' device.

    On a CPU the chunks of ``batch_size`` images go to as many threads as the cores left over by torch's own
    threads allow: each pass releases the interpreter, so the last method's scoring uses the cores the others
    have freed. Every chunk is computed the same way whichever thread takes it, so the result is the same
    bits for any core count.
    """
    device = _device(autoencoder, images01.device)

    @torch.no_grad()  # per thread: the pool's threads do not inherit the caller's mode
    def rebuild(part: torch.Tensor) -> torch.Tensor:
        decoded = autoencoder.decode(autoencoder.encode(part.to(device)))
        return decoded.float().clamp(0, 1).to(images01.device, images01.dtype)

    parts = images01.clamp(0, 1).split(batch_size)
    workers = 1 if device.type != "cpu" else min(len(parts), available_cores() // max(1, torch.get_num_threads()))
    if workers <= 1:
        return torch.cat([rebuild(part) for part in parts])
    return torch.cat(list(_pool().map(rebuild, parts)))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process: fresh threads at every call would each take a malloc arena of their own, and
    a server's memory would climb with every run (measured: +110 MB after six large uploads)."""
    return ThreadPoolExecutor(available_cores(), thread_name_prefix="magig-reconstruct")


# A forked child (a ZeroGPU worker) inherits the pool without its threads: work sent there would wait for ever.
if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_pool.cache_clear)


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
    batch_size: int = CHUNK,
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
