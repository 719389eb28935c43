"""What a method returns (``MethodOutput``) and what ``explain`` hands the user (``Explanation``).

Every method's ``run`` returns the same ``MethodOutput``; ``explain`` adds what all methods share (the
targets, the raw input's logits, timings, configuration) and the two completeness residuals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from magig_core.attribution.path_record import half_position, shares


@dataclass
class MethodOutput:
    """A method's own contribution to an explanation of B images.

    Path quantities run from the baseline side (index 0) to the input side (index N-1). The path's end
    outputs are F_c at the first and last points the method actually integrated over (NaN for a method
    with many paths, such as AGI): they differ from the raw images' outputs where the path's endpoints
    are reconstructions (EIG, MIG) or a point of the method's own (IG2, Blur IG).
    """

    attributions: torch.Tensor  # [B,3,H,W], per element of the classifier's normalized input
    path_probs: torch.Tensor  # [B,N] target-class softmax probability at every path point
    path_start_output: torch.Tensor  # [B] F_c at the path's first point
    path_end_output: torch.Tensor  # [B] F_c at the path's last point
    frames: torch.Tensor | None = None  # [B,F,3,H,W] path images in [0,1] space, unclamped
    frame_indices: torch.Tensor | None = None  # [F] path index of each frame
    nonfinite_gradients: int = 0  # gradient entries that were not finite and were counted as zero
    path_outputs: torch.Tensor | None = None  # [B,N] F_c at every path point (methods with one path)
    segment_sums: torch.Tensor | None = None  # [B,N-1] each segment's share of ΣA
    segment_mass: torch.Tensor | None = None  # [B,N-1] each segment's Σ|g ⊙ Δx|
    gradient_frames: torch.Tensor | None = None  # [B,F,3,H,W] input gradient at each frame's path point
    contribution_frames: torch.Tensor | None = None  # [B,F,3,H,W] g ⊙ Δx summed since the previous frame
    details: dict[str, Any] = field(default_factory=dict)  # run facts beyond the options (e.g. a bank size)


@dataclass
class Explanation:
    """Attributions and path diagnostics for a batch of B images.

    Two residuals, because two questions are asked of them:
    ``completeness_residual`` = |ΣA − (F_c(input) − F_c(baseline))| against the RAW images (or, for a
    method without a baseline image, the start of its own path): does the attribution account for the
    model's output difference? ``path_residual`` = |ΣA − (F_c(p_last) − F_c(p_first))| against the
    path's own endpoints: how exact is the integration? They coincide for anchored paths (IG, GIG,
    MA-GIG); for EIG and MIG, whose endpoints are autoencoder reconstructions, their gap is the
    reconstruction's effect on the output. For IG2, whose search walks away from the input, the path is
    reported reversed so that plots read the same way.
    """

    method: str
    attributions: torch.Tensor  # [B,3,H,W], per element of the classifier's normalized input
    targets: torch.Tensor  # [B] class indices that were explained
    path_probs: torch.Tensor  # [B,N] target-class softmax probability at every path point
    input_output: torch.Tensor  # [B] objective F_c at the raw input
    baseline_output: torch.Tensor  # [B] F_c at the raw baseline, or at the method's own path start
    input_logits: torch.Tensor  # [B,K] classifier logits on the raw input
    completeness_residual: torch.Tensor  # [B] |sum(A) - (F_c(input) - F_c(baseline))|
    path_start_output: torch.Tensor | None = None  # [B] F_c at the path's first point
    path_end_output: torch.Tensor | None = None  # [B] F_c at the path's last point
    frames: torch.Tensor | None = None  # [B,F,3,H,W] path images in [0,1] space, unclamped
    frame_indices: torch.Tensor | None = None  # [F] path index of each frame
    path_outputs: torch.Tensor | None = None  # [B,N] F_c at every path point
    segment_sums: torch.Tensor | None = None  # [B,N-1] each segment's share of ΣA
    segment_mass: torch.Tensor | None = None  # [B,N-1] each segment's Σ|g ⊙ Δx| over the input's elements
    gradient_frames: torch.Tensor | None = None  # [B,F,3,H,W] objective's input gradient at each frame
    contribution_frames: torch.Tensor | None = None  # [B,F,3,H,W] g ⊙ Δx summed since the previous frame
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    config: dict[str, Any] = field(default_factory=dict)  # every hyperparameter actually used
    stability: torch.Tensor | None = None  # [B] mean pairwise top-10 % IoU of K perturbed runs (stability=K)
    stability_rank: torch.Tensor | None = None  # [B] their mean pairwise Spearman correlation
    agreement: torch.Tensor | None = None  # [B,H,W] share of the K runs with the pixel in their top 10 %

    @property
    def num_path_points(self) -> int:
        return int(self.path_probs.shape[1])

    @property
    def completeness_relative(self) -> torch.Tensor:
        """Residual divided by |F_c(input) - F_c(baseline)| (NaN where that difference is 0)."""
        return self.completeness_residual / _nonzero(self.input_output - self.baseline_output)

    @property
    def path_residual(self) -> torch.Tensor:
        """|ΣA − (F_c(p_last) − F_c(p_first))|: the integration error alone (NaN without a single path)."""
        if self.path_start_output is None or self.path_end_output is None:
            return torch.full_like(self.completeness_residual, float("nan"))
        total = self.attributions.flatten(1).sum(dim=1)
        return (total - (self.path_end_output - self.path_start_output)).abs()

    @property
    def relative_path_residual(self) -> torch.Tensor:
        if self.path_start_output is None or self.path_end_output is None:
            return self.path_residual
        return self.path_residual / _nonzero(self.path_end_output - self.path_start_output)

    @property
    def segment_errors(self) -> torch.Tensor | None:
        """[B,N-1] F_c(p_{k+1}) − F_c(p_k) − (segment k's share of ΣA): where along the path the sum misses.

        Their total is the path residual's signed value, so this shows whether the error builds up inside
        the path or in its final jump to the input.
        """
        if self.path_outputs is None or self.segment_sums is None:
            return None
        return self.path_outputs.diff(dim=1) - self.segment_sums

    @property
    def accumulation(self) -> torch.Tensor | None:
        """[B,N] signed share of ΣA collected up to each path point: 0 at the baseline side, 1 at the input."""
        return None if self.segment_sums is None else shares(self.segment_sums)

    @property
    def accumulation_mass(self) -> torch.Tensor | None:
        """[B,N] share of the total absolute contribution Σ_k Σ|g_k ⊙ Δx_k| collected up to each point.

        Non-decreasing even where positive and negative contributions cancel in the signed share.
        """
        return None if self.segment_mass is None else shares(self.segment_mass)

    @property
    def t50(self) -> torch.Tensor | None:
        """[B] path position where half of the absolute mass has been collected (0.5 for an even spread)."""
        mass = self.accumulation_mass
        return None if mass is None else half_position(mass)

    @property
    def partial_maps(self) -> torch.Tensor | None:
        """[B,F,3,H,W] the attribution collected up to each frame's path point (the last one is ΣA's map)."""
        return None if self.contribution_frames is None else self.contribution_frames.cumsum(dim=1)

    @property
    def frame_probs(self) -> torch.Tensor | None:
        """Target probability at each returned frame: [B,F]."""
        if self.frame_indices is None:
            return None
        return self.path_probs[:, self.frame_indices.to(self.path_probs.device)]

    def to(self, device: str | torch.device) -> Explanation:
        """Move every tensor (e.g. to the CPU for saving)."""
        moved = {}
        for name, value in self.__dict__.items():
            moved[name] = value.to(device) if isinstance(value, torch.Tensor) else value
        return Explanation(**moved)


def _nonzero(gap: torch.Tensor) -> torch.Tensor:
    gap = gap.abs()
    return gap.where(gap > 0, torch.full_like(gap, float("nan")))
