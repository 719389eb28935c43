"""Distance of every path frame to its input: LPIPS (paper §4.4) or a clearly labelled pixel fallback.

LPIPS needs its backbone's ImageNet weights (torchvision's download cache). Without them LPIPS over a
random backbone would be meaningless, so it is never built silently: the loader either returns the
pixel RMSE distance together with the reason, or raises when asked to (``on_missing="raise"``).
Frames are clamped to [0,1] before either distance (decoded path images may leave the box); LPIPS then
sees them mapped to [−1,1] as it expects.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from magig_core.errors import MagigError
from magig_core.metrics.path import PathCurve, path_positions

LPIPS_NETS = ("alex", "vgg", "squeeze")
ON_MISSING = ("fallback", "raise")


class LpipsUnavailableError(MagigError, RuntimeError):
    """LPIPS cannot run with real backbone weights here."""


class LpipsDistance:
    """LPIPS between [0,1] images, batched; ``model`` is an ``lpips.LPIPS`` module."""

    def __init__(self, model: nn.Module, name: str) -> None:
        self.model = model.eval()
        self.name = name
        self.reason: str | None = None

    @torch.no_grad()
    def __call__(self, a01: torch.Tensor, b01: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        a = a01.to(device).clamp(0, 1) * 2 - 1
        b = b01.to(device).clamp(0, 1) * 2 - 1
        return self.model(a, b).flatten().double().cpu()


class PixelRmseDistance:
    """Root-mean-square pixel difference in [0,1] space: the stand-in when LPIPS cannot run."""

    name = "pixel-rmse"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason

    @torch.no_grad()
    def __call__(self, a01: torch.Tensor, b01: torch.Tensor) -> torch.Tensor:
        diff = a01.clamp(0, 1).double() - b01.to(a01.device).clamp(0, 1).double()
        return diff.pow(2).flatten(1).mean(1).sqrt().cpu()


FrameDistance = LpipsDistance | PixelRmseDistance


def backbone_weights_path(net: str = "alex") -> Path:
    """Where torchvision keeps the ImageNet weights LPIPS's backbone loads (``$TORCH_HOME/hub/checkpoints``)."""
    from torchvision.models import AlexNet_Weights, SqueezeNet1_1_Weights, VGG16_Weights

    weights = {"alex": AlexNet_Weights, "vgg": VGG16_Weights, "squeeze": SqueezeNet1_1_Weights}[net].IMAGENET1K_V1
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_frame_distance(
    net: str = "alex",
    version: str = "0.1",
    *,
    on_missing: str = "fallback",
    allow_download: bool = False,
    device: str | torch.device = "cpu",
) -> FrameDistance:
    """LPIPS (AlexNet, v0.1 by default) with real weights, else the pixel fallback or an error.

    Nothing is downloaded unless ``allow_download``; then an offline failure also falls back (or raises).
    """
    if net not in LPIPS_NETS:
        raise ValueError(f"unknown LPIPS network {net!r}; choose one of {', '.join(LPIPS_NETS)}")
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be one of {', '.join(ON_MISSING)}, not {on_missing!r}")
    weights = backbone_weights_path(net)
    if not weights.is_file() and not allow_download:
        return _unavailable(
            f"LPIPS-{net} needs torchvision's ImageNet weights at {weights}, which are missing; copy "
            f"{weights.name} there (or allow downloading) to measure LPIPS",
            on_missing,
        )
    try:
        import lpips

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's deprecation notes for lpips's `pretrained=`
            model = lpips.LPIPS(net=net, version=version, verbose=False)
    except (ImportError, OSError, RuntimeError) as err:
        return _unavailable(f"LPIPS-{net} could not be loaded: {err}", on_missing)
    return LpipsDistance(model.to(device), name=f"lpips-{net}-v{version}")


def _unavailable(reason: str, on_missing: str) -> PixelRmseDistance:
    if on_missing == "raise":
        raise LpipsUnavailableError(reason)
    return PixelRmseDistance(reason=f"{reason}; using pixel RMSE in [0,1] space instead")


def distance_curve(
    frames01: torch.Tensor,
    inputs01: torch.Tensor,
    distance: FrameDistance,
    *,
    frame_indices: torch.Tensor | None = None,
    num_points: int | None = None,
    batch_size: int = 32,
) -> PathCurve:
    """d(frame_k, input) for every frame of every image: ``frames01`` [B,F,3,H,W], ``inputs01`` [B,3,H,W].

    Positions are t = index/(N−1); without ``frame_indices`` the frames are taken to be the whole path.
    """
    b, f = frames01.shape[:2]
    if inputs01.shape[0] != b or inputs01.shape[1:] != frames01.shape[2:]:
        raise ValueError(f"inputs {tuple(inputs01.shape)} do not match frames {tuple(frames01.shape)}")
    if frame_indices is None:
        t = path_positions(f)
    else:
        t = path_positions(num_points if num_points is not None else int(frame_indices.max()) + 1, frame_indices)
    flat = frames01.flatten(0, 1)
    targets = inputs01.unsqueeze(1).expand_as(frames01).flatten(0, 1)
    values = torch.cat([distance(a, c) for a, c in zip(flat.split(batch_size), targets.split(batch_size),
                                                       strict=True)])
    return PathCurve(distance.name, t, values.view(b, f), reason=distance.reason)
