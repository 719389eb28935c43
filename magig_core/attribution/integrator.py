"""Left-point Riemann integration while a path is walked: memory does not grow with the step count.

A = sum_k grad F(p_k) * (p_{k+1} - p_k). Points arrive in order; each point's gradient is held only
until the next point is known. Path probabilities, objective values and each segment's share of the sum
are kept for every point (a few floats per image); path images, gradients and the running map only at the
indices the caller asked for (``PathRecord``).

Optional refinement: with ``substeps`` k > 1, each segment's gradient is the mean of the gradients at k
evenly spaced points of the straight pixel segment from p_k to p_{k+1} (the first is p_k's own), so the
path itself is unchanged and only classifier passes are added: k − 1 per segment.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from magig_core.attribution.path_record import PathRecord, WatchFn
from magig_core.attribution.result import MethodOutput

GradientFn = Callable[[torch.Tensor], torch.Tensor]  # normalized images [R,C,H,W] -> their gradients


def frame_positions(num_points: int, num_frames: int) -> torch.Tensor:
    """Evenly spaced path indices from the first to the last point (both included)."""
    if num_frames <= 0:
        return torch.zeros(0, dtype=torch.long)
    if num_frames == 1:
        return torch.tensor([num_points - 1])
    return torch.linspace(0, num_points - 1, num_frames).round().long().unique()


class PathIntegrator:
    def __init__(self, num_points: int, num_frames: int, to_unit_range, *, substeps: int = 1,
                 gradient_fn: GradientFn | None = None, watch: WatchFn | None = None) -> None:
        if substeps > 1 and gradient_fn is None:
            raise ValueError("refining segments needs a gradient function")
        self.num_points = num_points
        self.substeps = substeps
        self._gradient_fn = gradient_fn
        self.frame_indices = frame_positions(num_points, num_frames)
        self._wanted = set(self.frame_indices.tolist())
        self._to_unit_range = to_unit_range
        self._record = PathRecord(num_points, self.frame_indices, watch=watch)
        self._previous: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._probs: list[torch.Tensor] = []
        self._outputs: list[torch.Tensor] = []
        self._frames: list[torch.Tensor] = []
        self._nonfinite: torch.Tensor | int = 0  # a device tensor while walking: counting never waits

    @property
    def nonfinite_gradients(self) -> int:
        return int(self._nonfinite)

    @property
    def points_seen(self) -> int:
        return len(self._probs)

    def add(self, image: torch.Tensor, output: torch.Tensor, prob: torch.Tensor, grad: torch.Tensor | None) -> None:
        """Record the next path point: its image, F_c, target probability and gradient.

        The last point's gradient enters no sum; it may be None, and is then computed only if that point is
        a shown position (its gradient frame).
        """
        image = image.detach()
        if self._previous is not None:
            previous_image, previous_grad = self._previous
            step = image - previous_image
            slope = previous_grad if self.substeps == 1 else self._segment_gradient(previous_image, previous_grad, step)
            self._record.collect(slope * step)
        if grad is None and self._record.needs_gradient(len(self._probs)) and self._gradient_fn is not None:
            grad = self._gradient_fn(image)
        if grad is not None:
            grad = self._guard(grad.detach())
        shown = len(self._probs) in self._wanted
        if shown:
            self._frames.append(self._to_unit_range(image))
        self._record.visit(grad, (lambda: self._frames[-1]) if shown else None)
        self._probs.append(prob.detach())
        self._outputs.append(output.detach())
        self._previous = (image, grad)

    def _segment_gradient(self, start: torch.Tensor, start_grad: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Mean gradient over k evenly spaced points of the pixel segment (left rule on a k times finer grid)."""
        fractions = torch.arange(1, self.substeps, dtype=start.dtype, device=start.device) / self.substeps
        points = start.unsqueeze(0) + fractions.view(-1, *([1] * start.dim())) * step.unsqueeze(0)
        grads = self._guard(self._gradient_fn(points.flatten(0, 1)).detach()).view_as(points)
        return (start_grad + grads.sum(dim=0)) / self.substeps

    def _guard(self, grad: torch.Tensor) -> torch.Tensor:
        """A non-finite gradient (e.g. a NaN from a degenerate network) contributes nothing, and is counted.

        Always masked rather than checked first: a check would make the host wait for the device every step.
        """
        finite = torch.isfinite(grad)
        self._nonfinite = (~finite).sum() + self._nonfinite
        return torch.where(finite, grad, torch.zeros_like(grad))

    def attribution(self) -> torch.Tensor:
        if self._record.running is None or self.points_seen != self.num_points:
            raise RuntimeError(f"path incomplete: {self.points_seen} of {self.num_points} points recorded")
        return self._record.running

    def path_probs(self) -> torch.Tensor:
        return torch.stack(self._probs, dim=1)

    def frames(self) -> torch.Tensor | None:
        return torch.stack(self._frames, dim=1) if self._frames else None

    def output(self, **details) -> MethodOutput:
        """The walked path as the one result type every method returns."""
        self.attribution()
        recorded = self._record.finish()
        frames = self.frames()
        outputs = torch.stack(self._outputs, dim=1)
        return MethodOutput(
            attributions=recorded.attribution, path_probs=self.path_probs(), path_start_output=outputs[:, 0],
            path_end_output=outputs[:, -1], frames=frames,
            frame_indices=self.frame_indices if frames is not None else None,
            nonfinite_gradients=self.nonfinite_gradients, path_outputs=outputs,
            segment_sums=recorded.segment_sums, segment_mass=recorded.segment_mass,
            gradient_frames=recorded.gradient_frames, contribution_frames=recorded.contribution_frames,
            details={**details, **({"substeps": self.substeps} if self.substeps > 1 else {})},
        )
