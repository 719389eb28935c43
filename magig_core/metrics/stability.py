"""How far a map can be trusted: the agreement of K maps of one image made under small perturbations.

A guided path is chaotic in its discretization (one path point more or less can send the rest of the walk
elsewhere), so one run's most important pixels may be luck. Given K maps of the same image, each made
under a perturbation that keeps the method's definition, this module measures

- ``iou``: the mean over pairs of maps of the intersection over union of their top-10 % pixels;
- ``rank``: the mean over pairs of the Spearman rank correlation of their pixel values;
- ``agreement``: per pixel, the share of the K maps that put it among their top 10 %.

A pixel's value is the sum of |A| over the colour channels, as every map the product shows
(``magig_core.viz.saliency``). Ties (e.g. flat zero regions) are ranked by flat pixel index, the same way
in every map, so identical maps always agree perfectly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import torch

TOP_FRACTION = 0.1  # share of pixels counted as a map's most important


@dataclass
class Stability:
    """Agreement of K maps per image; ``iou`` and ``rank`` are 1 for K identical maps."""

    iou: torch.Tensor  # [B] mean pairwise IoU of the top-10 % pixel sets
    rank: torch.Tensor  # [B] mean pairwise Spearman correlation of the pixel values
    agreement: torch.Tensor  # [B,H,W] share of the K maps with the pixel in their top 10 %
    runs: int  # K


def pixel_maps(attributions: torch.Tensor) -> torch.Tensor:
    """[..., 3, H, W] attributions -> [..., H, W] maps: the sum of |A| over the colour channels."""
    return attributions.detach().abs().sum(dim=-3)


def top_count(num_pixels: int, fraction: float = TOP_FRACTION) -> int:
    """Pixels in the top ``fraction`` of a map: ⌈fraction · n⌉, at least one."""
    return max(1, math.ceil(fraction * num_pixels - 1e-9))


def _ordinal_ranks(maps: torch.Tensor) -> torch.Tensor:
    """[..., n] values -> [..., n] ranks 0 … n−1 (largest value last); ties by flat index, lower first."""
    order = maps.argsort(dim=-1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(maps.shape[-1], device=maps.device).expand_as(order))
    return ranks


def top_masks(maps: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """[..., H, W] maps -> bool masks of each map's top ``fraction`` pixels (exactly ``top_count`` each)."""
    flat = maps.flatten(-2).double()
    n = flat.shape[-1]
    # Negated values: the largest value gets rank 0; equal values go to the lower flat index first.
    ranks = _ordinal_ranks(-flat)
    return (ranks < top_count(n, fraction)).view_as(maps)


def stability(attributions: torch.Tensor, fraction: float = TOP_FRACTION) -> Stability:
    """Agreement of K attributions per image, ``[K, B, 3, H, W]`` (K ≥ 2)."""
    if attributions.dim() != 5 or attributions.shape[0] < 2:
        raise ValueError(f"stability needs [K,B,3,H,W] attributions with K >= 2; got {tuple(attributions.shape)}")
    maps = pixel_maps(attributions).double()
    masks = top_masks(maps, fraction)
    ranks = _ordinal_ranks(maps.flatten(-2)).double()
    ranks = ranks - ranks.mean(dim=-1, keepdim=True)
    ious, correlations = [], []
    for i, j in combinations(range(maps.shape[0]), 2):
        both = (masks[i] & masks[j]).flatten(-2).sum(-1).double()
        either = (masks[i] | masks[j]).flatten(-2).sum(-1).double()
        ious.append(both / either)
        covariance = (ranks[i] * ranks[j]).sum(-1)
        correlations.append(covariance / (ranks[i].norm(dim=-1) * ranks[j].norm(dim=-1)))
    return Stability(iou=torch.stack(ious).mean(0), rank=torch.stack(correlations).mean(0),
                     agreement=masks.double().mean(0), runs=int(maps.shape[0]))
