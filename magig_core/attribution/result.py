"""The result of one ``explain`` call: attributions plus everything the diagnostics need for free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Explanation:
    """Attributions and path diagnostics for a batch of B images.

    Path quantities run from the baseline side (index 0) to the input side (index N-1); for IG2, whose
    search walks away from the input, the path is reported reversed so that plots read the same way.
    """

    method: str
    attributions: torch.Tensor  # [B,3,H,W], per element of the classifier's normalized input
    targets: torch.Tensor  # [B] class indices that were explained
    path_probs: torch.Tensor  # [B,N] target-class softmax probability at every path point
    input_output: torch.Tensor  # [B] objective F_c at the raw input
    baseline_output: torch.Tensor  # [B] F_c at the raw baseline; IG2: at its path's start; AGI: NaN (many paths)
    input_logits: torch.Tensor  # [B,K] classifier logits on the raw input
    completeness_residual: torch.Tensor  # [B] |sum(A) - (F_c(input) - F_c(baseline))|
    frames: torch.Tensor | None = None  # [B,F,3,H,W] path images in [0,1] space, unclamped
    frame_indices: torch.Tensor | None = None  # [F] path index of each frame
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    config: dict[str, Any] = field(default_factory=dict)  # every hyperparameter actually used

    @property
    def num_path_points(self) -> int:
        return int(self.path_probs.shape[1])

    @property
    def relative_completeness_residual(self) -> torch.Tensor:
        """Residual divided by |F_c(input) - F_c(baseline)| (NaN where that difference is 0)."""
        gap = (self.input_output - self.baseline_output).abs()
        return self.completeness_residual / gap.where(gap > 0, torch.full_like(gap, float("nan")))

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
