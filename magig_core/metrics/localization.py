"""Ground-truth localization scores: does an attribution map point at the object that defines the class?

Both scores first sum the attribution over colour channels, giving one signed value per pixel (a pixel
matters by its total contribution, and channel signs may cancel, as they do in the model).

- **Energy in mask** (energy-based pointing game, Wang et al. 2020, Score-CAM): the share of *positive*
  attribution mass that falls inside the mask, ``sum(relu(a) * m) / sum(relu(a))``. Negative evidence
  is not "pointing at" anything, so it is dropped rather than allowed to cancel positive mass.
  A map with no positive mass (e.g. all zeros) scores **0**: it points nowhere.
- **Pointing game** (Zhang et al. 2016): a hit when the pixel with the largest channel-summed attribution
  lies inside the mask dilated by ``tolerance`` pixels (a (2t+1)² square neighbourhood; 0 = the mask
  itself). Ties take the first maximum in row-major order; an all-zero or constant map therefore
  "points" at the top-left pixel, a deterministic and essentially never rewarded choice.

All functions are batched: attributions [B,C,H,W] (or [B,H,W], already channel-summed) and masks
[B,H,W] (bool or {0,1}); per-image results are [B] float tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pixel_map(attributions: torch.Tensor) -> torch.Tensor:
    if attributions.dim() == 4:
        return attributions.float().sum(1)
    if attributions.dim() == 3:
        return attributions.float()
    raise ValueError(f"attributions must be [B,C,H,W] or [B,H,W], got shape {tuple(attributions.shape)}")


def _check(pixel_map: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    if masks.shape != pixel_map.shape:
        raise ValueError(
            f"masks {tuple(masks.shape)} must be [B,H,W] matching the attributions' {tuple(pixel_map.shape)}"
        )
    return masks.to(device=pixel_map.device).bool()


def energy_in_mask(attributions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """[B] share of positive channel-summed attribution inside the mask (0 where there is none)."""
    positive = _pixel_map(attributions).clamp_min(0)
    masks = _check(positive, masks)
    total = positive.flatten(1).sum(1)
    inside = (positive * masks).flatten(1).sum(1)
    return torch.where(
        total > 0, inside / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total)
    )


def dilate(masks: torch.Tensor, tolerance: int) -> torch.Tensor:
    """Grow [B,H,W] masks by ``tolerance`` pixels in every direction (square structuring element)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be ≥ 0 pixels, got {tolerance}")
    masks = masks.bool()
    if tolerance == 0:
        return masks
    size = 2 * tolerance + 1
    return F.max_pool2d(masks[:, None].float(), size, stride=1, padding=tolerance)[:, 0] > 0


def pointing_game(attributions: torch.Tensor, masks: torch.Tensor, tolerance: int = 0) -> torch.Tensor:
    """[B] 1.0 where the channel-summed attribution's maximum lies in the (dilated) mask, else 0.0."""
    pixel_map = _pixel_map(attributions)
    masks = dilate(_check(pixel_map, masks), tolerance)
    peak = pixel_map.flatten(1).argmax(1)
    return masks.flatten(1).gather(1, peak[:, None])[:, 0].float()


def random_attribution_energy(masks: torch.Tensor) -> torch.Tensor:
    """[B] the energy-in-mask an attribution spread uniformly (in expectation, any random map) scores.

    It equals the mask's area fraction: the chance level a method must beat.
    """
    return masks.bool().flatten(1).float().mean(1)


def localization_scores(
    attributions: torch.Tensor, masks: torch.Tensor, tolerance: int = 0
) -> dict[str, float]:
    """Batch means of both scores plus the chance level, ready for a table row."""
    return {
        "energy_in_mask": float(energy_in_mask(attributions, masks).mean()),
        "pointing_game": float(pointing_game(attributions, masks, tolerance).mean()),
        "mask_fraction": float(random_attribution_energy(masks).mean()),
    }
