"""Faithfulness metrics (DiffID / Insertion / Deletion) and path diagnostics."""

from magig_core.metrics.faithfulness import (
    IMPUTATIONS,
    PAPER_RATIOS,
    FaithfulnessResult,
    faithfulness,
    importance_ranks,
    perturb,
)
from magig_core.metrics.manifold import off_manifold_curve, reconstruct, reconstruction_psnr
from magig_core.metrics.path import (
    Completeness,
    PathCurve,
    completeness,
    confidence_curve,
    path_positions,
    trapezoid_auc,
)
from magig_core.metrics.perceptual import (
    LpipsDistance,
    LpipsUnavailableError,
    PixelRmseDistance,
    distance_curve,
    load_frame_distance,
)

__all__ = [
    "IMPUTATIONS",
    "PAPER_RATIOS",
    "Completeness",
    "FaithfulnessResult",
    "LpipsDistance",
    "LpipsUnavailableError",
    "PathCurve",
    "PixelRmseDistance",
    "completeness",
    "confidence_curve",
    "distance_curve",
    "faithfulness",
    "importance_ranks",
    "load_frame_distance",
    "off_manifold_curve",
    "path_positions",
    "perturb",
    "reconstruct",
    "reconstruction_psnr",
    "trapezoid_auc",
]
