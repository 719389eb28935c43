"""Left-point Riemann integration while a path is walked: memory does not grow with the step count.

A = sum_k grad F(p_k) * (p_{k+1} - p_k). Points arrive in order; each point's gradient is held only
until the next point is known. Path probabilities are kept for every point (two floats per image); path
images only at the few indices the caller asked to see.
"""

from __future__ import annotations

import torch

from magig_core.attribution.result import MethodOutput


def frame_positions(num_points: int, num_frames: int) -> torch.Tensor:
    """Evenly spaced path indices from the first to the last point (both included)."""
    if num_frames <= 0:
        return torch.zeros(0, dtype=torch.long)
    if num_frames == 1:
        return torch.tensor([num_points - 1])
    return torch.linspace(0, num_points - 1, num_frames).round().long().unique()


class PathIntegrator:
    def __init__(self, num_points: int, num_frames: int, to_unit_range) -> None:
        self.num_points = num_points
        self.frame_indices = frame_positions(num_points, num_frames)
        self._wanted = set(self.frame_indices.tolist())
        self._to_unit_range = to_unit_range
        self._attribution: torch.Tensor | None = None
        self._previous: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._probs: list[torch.Tensor] = []
        self._first_output: torch.Tensor | None = None
        self._last_output: torch.Tensor | None = None
        self._frames: list[torch.Tensor] = []
        self._nonfinite: torch.Tensor | int = 0  # a device tensor while walking: counting never waits

    @property
    def nonfinite_gradients(self) -> int:
        return int(self._nonfinite)

    @property
    def points_seen(self) -> int:
        return len(self._probs)

    def add(self, image: torch.Tensor, output: torch.Tensor, prob: torch.Tensor, grad: torch.Tensor | None) -> None:
        """Record the next path point: its image, F_c, target probability and gradient (None only at the end)."""
        image = image.detach()
        if self._first_output is None:
            self._first_output = output.detach()
        self._last_output = output.detach()
        if self._previous is not None:
            previous_image, previous_grad = self._previous
            contribution = previous_grad * (image - previous_image)
            self._attribution = contribution if self._attribution is None else self._attribution + contribution
        if grad is not None:
            grad = self._guard(grad.detach())
        if len(self._probs) in self._wanted:
            self._frames.append(self._to_unit_range(image))
        self._probs.append(prob.detach())
        self._previous = (image, grad)

    def _guard(self, grad: torch.Tensor) -> torch.Tensor:
        """A non-finite gradient (e.g. a NaN from a degenerate network) contributes nothing, and is counted.

        Always masked rather than checked first: a check would make the host wait for the device every step.
        """
        finite = torch.isfinite(grad)
        self._nonfinite = (~finite).sum() + self._nonfinite
        return torch.where(finite, grad, torch.zeros_like(grad))

    def attribution(self) -> torch.Tensor:
        if self._attribution is None or self.points_seen != self.num_points:
            raise RuntimeError(f"path incomplete: {self.points_seen} of {self.num_points} points recorded")
        return self._attribution

    def path_probs(self) -> torch.Tensor:
        return torch.stack(self._probs, dim=1)

    def frames(self) -> torch.Tensor | None:
        return torch.stack(self._frames, dim=1) if self._frames else None

    def output(self, **details) -> MethodOutput:
        """The walked path as the one result type every method returns."""
        attribution = self.attribution()
        frames = self.frames()
        return MethodOutput(
            attributions=attribution, path_probs=self.path_probs(), path_start_output=self._first_output,
            path_end_output=self._last_output, frames=frames,
            frame_indices=self.frame_indices if frames is not None else None,
            nonfinite_gradients=self.nonfinite_gradients, details=details,
        )
