"""DiffID, Insertion and Deletion exactly as the paper's tables were produced (docs/methods.md §5.1).

Per image, every element of the C×H×W normalized input is ranked by |A|. Deletion at ratio r replaces the
m = ⌊n·r⌋ MOST important elements, Insertion at r replaces the m LEAST important ones (keeps the top
n − m). Replaced elements take the imputation value (default: one scalar per image, the mean of the
preserved normalized elements). The score at r is binary: is the top-1 prediction on the perturbed image
the label? Ins/Del are the plain means over the ratios and DiffID = Ins − Del.

Ties in |A| follow one fixed rule: equal scores are ranked by flat element index (channel-major C, H, W),
the lower index counting as MORE important. One ranking serves both games, so the elements Insertion
keeps at ratio r are exactly those Deletion removes at ratio 1 − r.

Images are processed in chunks, so memory stays bounded for any set size; per-image outcomes are kept,
so a set-level score is the mean of per-image outcomes and sets can be scored incrementally and merged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from magig_core.attribution.model import wrap_classifier

PAPER_RATIOS: tuple[float, ...] = tuple(k / 10 for k in range(1, 10))
IMPUTATIONS = ("mean", "zero", "blur")
GAMES = ("insertion", "deletion")
_EPS = 1e-8
_BLUR_SIZE = 11


@dataclass
class FaithfulnessResult:
    """Per-image outcomes of the insertion/deletion games; set-level numbers are means over images.

    ``*_correct`` are binary ([B,R] bool, top-1 == label), ``*_soft`` the confidence variant
    p_c(perturbed) / (p_c(original) + 1e-8) clamped to [0,1] per image ([B,R] float).
    """

    ratios: tuple[float, ...]
    labels: torch.Tensor  # [B]
    insertion_correct: torch.Tensor  # [B,R]
    deletion_correct: torch.Tensor  # [B,R]
    insertion_soft: torch.Tensor  # [B,R]
    deletion_soft: torch.Tensor  # [B,R]
    original_correct: torch.Tensor  # [B]
    original_prob: torch.Tensor  # [B] p_label on the unperturbed image
    imputation: str = "mean"

    @property
    def num_images(self) -> int:
        return int(self.labels.shape[0])

    # Per-image contributions: their mean over images is the set-level table number.
    @property
    def image_insertion(self) -> torch.Tensor:
        return self.insertion_correct.double().mean(1)

    @property
    def image_deletion(self) -> torch.Tensor:
        return self.deletion_correct.double().mean(1)

    @property
    def image_diffid(self) -> torch.Tensor:
        return self.image_insertion - self.image_deletion

    # Set level.
    @property
    def insertion_curve(self) -> torch.Tensor:
        """Top-1 accuracy at each ratio: [R]."""
        return self.insertion_correct.double().mean(0)

    @property
    def deletion_curve(self) -> torch.Tensor:
        return self.deletion_correct.double().mean(0)

    @property
    def insertion(self) -> float:
        return float(self.insertion_curve.mean())

    @property
    def deletion(self) -> float:
        return float(self.deletion_curve.mean())

    @property
    def diffid(self) -> float:
        return self.insertion - self.deletion

    @staticmethod
    def concat(results: Sequence[FaithfulnessResult]) -> FaithfulnessResult:
        """Join results of disjoint image sets scored with the same ratios and imputation."""
        if not results:
            raise ValueError("nothing to concatenate")
        first = results[0]
        for other in results[1:]:
            if other.ratios != first.ratios or other.imputation != first.imputation:
                raise ValueError("cannot merge results scored with different ratios or imputation")
        names = ("labels", "insertion_correct", "deletion_correct", "insertion_soft", "deletion_soft",
                 "original_correct", "original_prob")
        joined = {name: torch.cat([getattr(r, name) for r in results]) for name in names}
        return FaithfulnessResult(ratios=first.ratios, imputation=first.imputation, **joined)


def perturbed_counts(num_elements: int, ratios: Sequence[float]) -> list[int]:
    """m = ⌊n·r⌋ per ratio, evaluated in floating point as the reference does."""
    return [int(num_elements * r) for r in ratios]


def importance_ranks(attributions: torch.Tensor) -> torch.Tensor:
    """Rank of every element by |A| (0 = most important), ties by ascending flat index: [B, C·H·W]."""
    scores = attributions.detach().flatten(1).abs()
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def _perturbation_masks(ranks: torch.Tensor, counts: Sequence[int], game: str) -> torch.Tensor:
    """[R,B,n] bool: True where the element is replaced."""
    n = ranks.shape[1]
    if game == "deletion":
        return torch.stack([ranks < m for m in counts])
    return torch.stack([ranks >= n - m for m in counts])


def _fill_values(normalized: torch.Tensor, masks: torch.Tensor, imputation: str) -> torch.Tensor:
    """Replacement value for every element: [R,B,n] (broadcastable)."""
    flat = normalized.flatten(1)
    if imputation == "mean":
        # One scalar per image and ratio: the mean of the preserved elements over all channels together.
        keep = ~masks
        kept_sum = (flat.double().unsqueeze(0) * keep).sum(-1)
        kept_count = keep.sum(-1).double()
        return (kept_sum / (kept_count + _EPS)).to(flat.dtype).unsqueeze(-1)
    if imputation == "zero":
        return torch.zeros((), dtype=flat.dtype, device=flat.device)
    channels = normalized.shape[1]
    kernel = torch.full((channels, 1, _BLUR_SIZE, _BLUR_SIZE), 1.0 / _BLUR_SIZE**2, dtype=flat.dtype,
                        device=flat.device)
    blurred = F.conv2d(normalized, kernel, padding=_BLUR_SIZE // 2, groups=channels)
    return blurred.flatten(1).unsqueeze(0)


def perturb_normalized(
    normalized: torch.Tensor,
    ranks: torch.Tensor,
    ratios: Sequence[float],
    game: str,
    imputation: str = "mean",
) -> torch.Tensor:
    """Perturbed copies of normalized images for every ratio of one game: [R,B,C,H,W]."""
    _check_options(game=game, imputation=imputation)
    masks = _perturbation_masks(ranks, perturbed_counts(ranks.shape[1], ratios), game)
    fill = _fill_values(normalized, masks, imputation)
    flat = normalized.flatten(1).unsqueeze(0)
    return torch.where(masks, fill, flat).view(len(ratios), *normalized.shape)


def perturb(
    classifier: nn.Module,
    images01: torch.Tensor,
    attributions: torch.Tensor,
    ratio: float,
    game: str = "deletion",
    imputation: str = "mean",
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> torch.Tensor:
    """The [0,1]-space image the classifier sees at one ratio of one game (for display)."""
    model = wrap_classifier(classifier, device=images01.device, dtype=images01.dtype, normalization=normalization)
    out = perturb_normalized(model.normalize(images01), importance_ranks(attributions), [ratio], game, imputation)[0]
    return model.denormalize(out)


def _check_options(*, game: str | None = None, imputation: str | None = None, ratios=None) -> None:
    if game is not None and game not in GAMES:
        raise ValueError(f"unknown game {game!r}; choose one of {', '.join(GAMES)}")
    if imputation is not None and imputation not in IMPUTATIONS:
        raise ValueError(f"unknown imputation {imputation!r}; choose one of {', '.join(IMPUTATIONS)}")
    if ratios is not None:
        if len(ratios) == 0:
            raise ValueError("give at least one ratio")
        bad = [r for r in ratios if not (0.0 <= r <= 1.0) or math.isnan(r)]
        if bad:
            raise ValueError(f"ratios must lie in [0, 1]; got {bad}")


@torch.no_grad()
def faithfulness(
    classifier: nn.Module,
    images01: torch.Tensor,
    attributions: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    *,
    ratios: Sequence[float] = PAPER_RATIOS,
    imputation: str = "mean",
    batch_size: int = 64,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> FaithfulnessResult:
    """Score attributions with the insertion/deletion games (binary and soft) for any number of images.

    ``images01`` [B,C,H,W] in [0,1]; ``attributions`` per element of the normalized input; ``labels`` are
    the ground-truth classes (the paper scores every image for its true class, even when misclassified).
    ``batch_size`` bounds how many perturbed images exist at once. ``normalization``: as for ``explain``
    (the imputation value is a mean in the classifier's normalized space).
    """
    ratios = tuple(float(r) for r in ratios)
    _check_options(imputation=imputation, ratios=ratios)
    if attributions.shape != images01.shape:
        raise ValueError(f"attributions {tuple(attributions.shape)} must match images {tuple(images01.shape)}")
    labels = torch.as_tensor(labels, dtype=torch.long, device=images01.device).view(-1)
    if labels.shape[0] != images01.shape[0]:
        raise ValueError(f"got {labels.shape[0]} labels for {images01.shape[0]} images")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")

    variants = len(GAMES) * len(ratios)
    chunk = max(1, batch_size // variants)
    outcome: dict[str, list[torch.Tensor]] = {k: [] for k in ("ic", "dc", "is", "ds", "oc", "op")}
    model = wrap_classifier(classifier, device=images01.device, dtype=torch.float32, normalization=normalization)
    for start in range(0, images01.shape[0], chunk):
        x = model.normalize(images01[start : start + chunk].float())
        y = labels[start : start + chunk]
        ranks = importance_ranks(attributions[start : start + chunk].to(x.device))
        original = model.forward(x)
        p_orig = original.softmax(-1).gather(1, y[:, None])[:, 0]
        perturbed = torch.cat([perturb_normalized(x, ranks, ratios, g, imputation) for g in GAMES])
        flat = perturbed.flatten(0, 1)  # [2R·b, C,H,W], game-major then ratio then image
        logits = torch.cat([model.forward(part) for part in flat.split(batch_size)])
        logits = logits.view(len(GAMES), len(ratios), x.shape[0], -1)
        correct = (logits.argmax(-1) == y).permute(0, 2, 1)  # [2,b,R]
        prob = logits.softmax(-1).gather(-1, y.view(1, 1, -1, 1).expand(2, len(ratios), -1, 1))[..., 0]
        soft = (prob.permute(0, 2, 1) / (p_orig[None, :, None] + _EPS)).clamp(0.0, 1.0)
        for key, value in (("ic", correct[0]), ("dc", correct[1]), ("is", soft[0]), ("ds", soft[1]),
                           ("oc", original.argmax(-1) == y), ("op", p_orig)):
            outcome[key].append(value.cpu())
    cat = {k: torch.cat(v) for k, v in outcome.items()}
    return FaithfulnessResult(
        ratios=ratios,
        labels=labels.cpu(),
        insertion_correct=cat["ic"],
        deletion_correct=cat["dc"],
        insertion_soft=cat["is"],
        deletion_soft=cat["ds"],
        original_correct=cat["oc"],
        original_prob=cat["op"],
        imputation=imputation,
    )
