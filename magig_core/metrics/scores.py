"""The one scoring step: an ``Explanation`` in, one typed ``Scores`` record per image out.

The app's table, the ``explain`` CLI, ``evaluate``, ``demo-table`` and reports all call ``score`` and read
the numbers by the names of ``definitions.METRICS``, so one name is one number for one image and settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from magig_core.attribution.registry import method_spec
from magig_core.attribution.result import Explanation
from magig_core.attribution.spaces import Autoencoder
from magig_core.metrics.definitions import METRIC_NAMES
from magig_core.metrics.faithfulness import PAPER_RATIOS, faithfulness
from magig_core.metrics.localization import energy_in_mask, pointing_game
from magig_core.metrics.manifold import off_manifold_curve
from magig_core.metrics.path import completeness, confidence_curve, path_positions
from magig_core.metrics.perceptual import FrameDistance, distance_curve

SCORES_VERSION = 1
GAME_CURVES = ("insertion_top1", "deletion_top1", "insertion_prob", "deletion_prob", "insertion_soft",
               "deletion_soft")  # one value per ratio
PATH_CURVES = ("frame_t", "distance", "off_manifold")  # one value per path image
ACCUMULATION_CURVES = ("accumulation", "accumulation_mass")  # one value per path point


@dataclass(frozen=True)
class Scores:
    """Every metric of ``METRICS`` for one image and one explained class (NaN where a metric does not apply).

    ``curves`` keeps what the means were taken over: the games' value at every ratio (``GAME_CURVES``),
    the path distances at every path image (``PATH_CURVES``) and the share of the map collected up to
    every path point (``ACCUMULATION_CURVES``), so set-level curves need no attributions.
    """

    target: int
    values: dict[str, float]
    ratios: tuple[float, ...] = PAPER_RATIOS
    imputation: str = "mean"
    curves: dict[str, list[float]] = field(default_factory=dict)
    original_correct: bool | None = None  # top-1 on the unperturbed input is the target
    original_prob: float | None = None  # the target's probability on the unperturbed input
    distance: str | None = None  # the frame distance behind distance_auc and off_manifold_auc
    version: int = SCORES_VERSION

    def __getitem__(self, name: str) -> float:
        return self.values.get(name, math.nan)

    def to_json(self) -> dict[str, Any]:
        """Strict-JSON dict (NaN becomes null)."""
        return {
            "version": self.version,
            "target": self.target,
            "values": {k: _finite_or_none(v) for k, v in self.values.items()},
            "ratios": list(self.ratios),
            "imputation": self.imputation,
            "curves": {k: [_finite_or_none(v) for v in values] for k, values in self.curves.items()},
            "original_correct": self.original_correct,
            "original_prob": self.original_prob,
            "distance": self.distance,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scores:
        """Inverse of ``to_json``; metrics added to the list after the record was written read as NaN."""
        values = {name: math.nan for name in METRIC_NAMES}
        values.update({k: _nan_if_none(v) for k, v in data["values"].items()})
        return cls(
            target=int(data["target"]),
            values=values,
            ratios=tuple(float(r) for r in data.get("ratios", PAPER_RATIOS)),
            imputation=data.get("imputation", "mean"),
            curves={k: [_nan_if_none(v) for v in vs] for k, vs in data.get("curves", {}).items()},
            original_correct=data.get("original_correct"),
            original_prob=data.get("original_prob"),
            distance=data.get("distance"),
            version=int(data.get("version", SCORES_VERSION)),
        )


def score(
    explanation: Explanation,
    classifier: nn.Module,
    images01: torch.Tensor,
    *,
    ratios: Sequence[float] = PAPER_RATIOS,
    imputation: str = "mean",
    batch_size: int = 64,
    distance: FrameDistance | None = None,
    autoencoder: Autoencoder | None = None,
    masks: torch.Tensor | None = None,
) -> list[Scores]:
    """Score an explanation of B images ([B,3,H,W] in [0,1], the images it explained): one ``Scores`` each.

    The games score ``explanation.targets``. Path-image distances need ``distance`` (and ``autoencoder``
    for the off-manifold one) and an explanation computed with frames; the localization scores need the
    objects' true ``masks`` ([B,H,W] bool). Without them these metrics are NaN.
    """
    device = images01.device
    games = faithfulness(classifier, images01, explanation.attributions.to(device), explanation.targets.to(device),
                         ratios=ratios, imputation=imputation, batch_size=batch_size)
    per_ratio = {
        "insertion_top1": games.insertion_correct.double(), "deletion_top1": games.deletion_correct.double(),
        "insertion_prob": games.insertion_prob.double(), "deletion_prob": games.deletion_prob.double(),
        "insertion_soft": games.insertion_soft.double(), "deletion_soft": games.deletion_soft.double(),
    }
    means = {name: curve.mean(1) for name, curve in per_ratio.items()}
    means["diffid_top1"] = means["insertion_top1"] - means["deletion_top1"]
    means["diffid_prob"] = means["insertion_prob"] - means["deletion_prob"]
    residual = completeness(explanation)
    means["completeness_residual"] = residual.absolute
    means["completeness_relative"] = residual.relative
    means["path_residual"] = explanation.path_residual.detach().double().cpu()
    b = images01.shape[0]
    nan = torch.full((b,), math.nan, dtype=torch.float64)
    has_path = method_spec(explanation.method).has_path
    means["confidence_auc"] = confidence_curve(explanation).auc if has_path else nan
    path_curves, distance_name = _path_curves(explanation, images01, distance, autoencoder)
    means["distance_auc"] = path_curves["distance"].auc if "distance" in path_curves else nan
    means["off_manifold_auc"] = path_curves["off_manifold"].auc if "off_manifold" in path_curves else nan
    means["t50"] = nan if explanation.t50 is None else explanation.t50
    accumulation = {name: getattr(explanation, name) for name in ACCUMULATION_CURVES}
    for name, values in (("stability_iou", explanation.stability), ("stability_rank", explanation.stability_rank)):
        means[name] = nan if values is None else values.detach().double().cpu()
    attributions = explanation.attributions.detach().cpu()
    has_masks = masks is not None
    means["energy_in_mask"] = energy_in_mask(attributions, masks.cpu()).double() if has_masks else nan
    means["pointing_game"] = pointing_game(attributions, masks.cpu()).double() if has_masks else nan
    means["emprt"] = nan  # reruns the method on a randomized classifier: evaluate fills it in on request
    records = []
    for row in range(b):
        curves = {name: curve[row].tolist() for name, curve in per_ratio.items()}
        if path_curves:
            curves["frame_t"] = next(iter(path_curves.values())).t.tolist()
            curves.update({name: c.values[row].double().tolist() for name, c in path_curves.items()})
        curves.update({name: c[row].tolist() for name, c in accumulation.items() if c is not None})
        records.append(Scores(
            target=int(explanation.targets[row]),
            values={name: float(means[name][row]) for name in METRIC_NAMES},
            ratios=games.ratios,
            imputation=imputation,
            curves=curves,
            original_correct=bool(games.original_correct[row]),
            original_prob=float(games.original_prob[row]),
            distance=distance_name,
        ))
    return records


def _path_curves(explanation: Explanation, images01: torch.Tensor, distance: FrameDistance | None,
                 autoencoder: Autoencoder | None) -> tuple[dict, str | None]:
    """Distance to the input and to the own reconstruction at every path image, where both can be had."""
    frames = explanation.frames
    if distance is None or frames is None or frames.shape[1] == 0:
        return {}, None
    frames = frames.to(images01.device).float()
    where = {"frame_indices": explanation.frame_indices, "num_points": explanation.num_path_points}
    curves = {"distance": distance_curve(frames, images01.float(), distance, **where)}
    if autoencoder is not None:
        curves["off_manifold"] = off_manifold_curve(frames, autoencoder, distance, **where)
    return curves, distance.name


def frame_positions(explanation: Explanation) -> torch.Tensor | None:
    """t of every path image the explanation kept (None without path images)."""
    if explanation.frames is None or explanation.frames.shape[1] == 0:
        return None
    return path_positions(explanation.num_path_points, explanation.frame_indices)


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)
