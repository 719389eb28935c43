"""The one list of metric names: every table column, CSV column, JSON key and app column is read from here.

A name says what it measures, so the same name means the same number in every front end. ``_top1`` games
score whether the classifier's top-1 class is still the target (the paper's tables); ``_prob`` games
average the target's probability (readable on a single image, where top-1 outcomes are 0 or 1).
"""

from __future__ import annotations

from dataclasses import dataclass

BETTER = ("higher", "lower", "")


@dataclass(frozen=True)
class MetricDefinition:
    """One metric: its key, its column label (``{distance}`` is filled in with the path distance's name),
    a one-sentence definition and which direction is better ("" where neither is)."""

    name: str
    label: str
    definition: str
    better: str

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise ValueError(f"better must be one of {BETTER}, not {self.better!r}")

    def column(self, distance: str = "distance") -> str:
        """The column title with its direction arrow."""
        arrow = {"higher": " ↑", "lower": " ↓", "": ""}[self.better]
        return self.label.format(distance=distance) + arrow


_KEPT = "when only the most important 1 − r of the input is kept (the rest set to the image's mean)"
_REMOVED = "when the most important r of the input is set to the image's mean"

METRICS: tuple[MetricDefinition, ...] = (
    MetricDefinition("diffid_top1", "DiffID top-1",
                     "insertion_top1 − deletion_top1: the paper's DiffID, as its tables report it.", "higher"),
    MetricDefinition("insertion_top1", "Insertion top-1",
                     f"Share of the ratios r = 0.1…0.9 at which the top-1 class is still the target {_KEPT}.",
                     "higher"),
    MetricDefinition("deletion_top1", "Deletion top-1",
                     f"Share of the ratios r = 0.1…0.9 at which the top-1 class is still the target {_REMOVED}.",
                     "lower"),
    MetricDefinition("diffid_prob", "DiffID p",
                     "insertion_prob − deletion_prob: DiffID on the target's probability instead of top-1.", "higher"),
    MetricDefinition("insertion_prob", "Insertion p",
                     f"Mean over r = 0.1…0.9 of the target's probability {_KEPT}.", "higher"),
    MetricDefinition("deletion_prob", "Deletion p",
                     f"Mean over r = 0.1…0.9 of the target's probability {_REMOVED}.", "lower"),
    MetricDefinition("insertion_soft", "Insertion p/p₀",
                     "insertion_prob with each probability divided by the target's probability on the input and "
                     "clamped to 1.", "higher"),
    MetricDefinition("deletion_soft", "Deletion p/p₀",
                     "deletion_prob with each probability divided by the target's probability on the input and "
                     "clamped to 1.", "lower"),
    MetricDefinition("completeness_residual", "Completeness residual",
                     "|ΣA − (F_c(input) − F_c(baseline))|: how much of the output change the map leaves out.",
                     "lower"),
    MetricDefinition("completeness_relative", "Relative completeness residual",
                     "completeness_residual / |F_c(input) − F_c(baseline)|; NaN where that change is exactly 0 "
                     "(never clamped, so a tiny change cannot inflate it into a huge number).", "lower"),
    MetricDefinition("path_residual", "Path residual",
                     "|ΣA − (F_c(last path point) − F_c(first path point))|: the integration error alone (NaN "
                     "without a single path).", "lower"),
    MetricDefinition("confidence_auc", "Confidence AUC",
                     "Trapezoid area over t ∈ [0, 1] of the target's probability along the path (NaN without a "
                     "path).", ""),
    MetricDefinition("distance_auc", "{distance} AUC",
                     "Trapezoid area over t of each path image's distance to the input (NaN without path images).",
                     "lower"),
    MetricDefinition("off_manifold_auc", "Off-manifold AUC",
                     "Trapezoid area over t of each path image's distance to its own autoencoder reconstruction "
                     "(NaN without path images or autoencoder).", "lower"),
    MetricDefinition("t50", "t50",
                     "Path position t (0 at the baseline side, 1 at the input) by which half of the path's absolute "
                     "contribution mass Σ_k Σ|g_k ⊙ Δx_k| has been collected, linear between path points; small: the "
                     "map is earned early on the path, large: late (NaN without a path).", ""),
    MetricDefinition("stability_iou", "Stability IoU",
                     "Mean over pairs of K runs under small perturbations (path points N, N − 1, …, or input noise "
                     "of 1/255) of the overlap (IoU) of their top-10 % pixels; 1 = the same pixels every time "
                     "(NaN unless stability was asked for).", "higher"),
    MetricDefinition("stability_rank", "Stability rank",
                     "Mean over the same pairs of the Spearman rank correlation of the maps' pixel values (NaN "
                     "unless stability was asked for).", "higher"),
    MetricDefinition("energy_in_mask", "Energy in mask",
                     "Share of the positive channel-summed attribution inside the object's true mask (NaN without "
                     "a mask).", "higher"),
    MetricDefinition("pointing_game", "Pointing game",
                     "1 if the channel-summed attribution's maximum lies inside the object's true mask, else 0 "
                     "(NaN without a mask).", "higher"),
    MetricDefinition("emprt", "EMPRT",
                     "Efficient MPRT: the relative rise (H_random − H) / H of the map's 100-bin histogram entropy when "
                     "every layer of the classifier is re-initialized; 0 for a map that ignores the model (computed "
                     "on request: evaluate --metrics emprt).", "higher"),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)
_BY_NAME = {m.name: m for m in METRICS}
if len(_BY_NAME) != len(METRICS):
    raise RuntimeError("metric names must be unique")


def metric(name: str) -> MetricDefinition:
    """The definition of one metric; a KeyError names the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRIC_NAMES)}") from None
