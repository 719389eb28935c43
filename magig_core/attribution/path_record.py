"""What a path walk leaves besides its attribution: where along the path the attribution was collected.

Recorded while the path is walked, never by a second pass: each segment's contribution g ⊙ Δx is added to
the running map and its signed sum and absolute mass are kept (two floats per image and segment); at the
shown positions the classifier's input gradient and a copy of the running map are kept. A walk may run
from the baseline side (IG, GIG, MA-GIG, ...) or from the input side (IG2, Blur IG); the record turns
both into the same baseline-to-input order at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class PathSnapshot:
    """The state of a walk at one shown position, handed to ``explain(watch=...)`` while the walk runs.

    ``partial`` is the sum of every contribution walked so far: it grows from the walk's start (the
    baseline side for most methods, the input side for IG2 and Blur IG) and is exactly the final
    attribution at the walk's last point. ``collected`` is its signed sum after each point walked so far,
    at the path positions ``collected_t`` (in walk order).
    """

    done: int  # points walked, this one included
    total: int  # points on the path
    t: float  # path position of this point (0 at the baseline side, 1 at the input)
    image: torch.Tensor | None  # [B,3,H,W] the path image here, in [0,1] space
    gradient: torch.Tensor  # [B,3,H,W] the objective's input gradient here
    partial: torch.Tensor  # [B,3,H,W] the running attribution map
    collected_t: torch.Tensor  # [k] path positions of the points walked so far
    collected: torch.Tensor  # [B,k] signed sum of the running map at those points


WatchFn = Callable[[PathSnapshot], None]


@dataclass
class RecordedPath:
    """The record in baseline-to-input order, ready for ``MethodOutput``."""

    attribution: torch.Tensor  # [B,3,H,W]
    segment_sums: torch.Tensor  # [B,N-1]
    segment_mass: torch.Tensor  # [B,N-1]
    gradient_frames: torch.Tensor | None  # [B,F,3,H,W]
    contribution_frames: torch.Tensor | None  # [B,F,3,H,W]


class PathRecord:
    """Accumulates a walk's contributions segment by segment and keeps the shown positions' features.

    Call ``visit`` at every point in walk order (``needs_gradient`` says whether that point's gradient is
    wanted) and ``collect`` once per segment after the point the walk leaves from. ``frame_indices`` are
    path indices in baseline-to-input order; ``reverse`` says the walk starts at the input (index N−1).
    """

    def __init__(self, num_points: int, frame_indices: torch.Tensor, *, reverse: bool = False,
                 watch: WatchFn | None = None) -> None:
        self.num_points = num_points
        self.reverse = reverse
        self.frame_indices = frame_indices
        self._wanted = set(frame_indices.tolist())
        self._watch = watch
        self._running: torch.Tensor | None = None
        self._sums: list[torch.Tensor] = []
        self._mass: list[torch.Tensor] = []
        self._gradients: dict[int, torch.Tensor] = {}
        self._maps: dict[int, torch.Tensor] = {}
        self._visited = 0

    def path_index(self, walk_index: int) -> int:
        return self.num_points - 1 - walk_index if self.reverse else walk_index

    def needs_gradient(self, walk_index: int) -> bool:
        return self.path_index(walk_index) in self._wanted

    @property
    def running(self) -> torch.Tensor | None:
        return self._running

    def collect(self, contribution: torch.Tensor) -> None:
        """The next segment's contribution g ⊙ Δx, in walk order."""
        self._sums.append(contribution.flatten(1).sum(dim=1))
        self._mass.append(contribution.abs().flatten(1).sum(dim=1))
        self._running = contribution.clone() if self._running is None else self._running.add_(contribution)

    def visit(self, grad: torch.Tensor | None, image01: Callable[[], torch.Tensor] | None = None) -> None:
        """The next point in walk order; at a shown position its gradient must be given."""
        walk_index = self._visited
        self._visited += 1
        index = self.path_index(walk_index)
        if index not in self._wanted:
            return
        if grad is None:
            raise ValueError(f"the gradient at shown path index {index} was not computed")
        partial = self._running.clone() if self._running is not None else torch.zeros_like(grad)
        self._gradients[index] = grad.detach().clone()
        self._maps[index] = partial
        if self._watch is not None:
            self._watch(self._snapshot(index, image01() if image01 is not None else None))

    def _snapshot(self, index: int, image: torch.Tensor | None) -> PathSnapshot:
        walked = self._visited
        steps = torch.arange(walked, dtype=torch.float64)
        positions = (self.num_points - 1 - steps) if self.reverse else steps
        sums = torch.stack(self._sums, dim=1).double() if self._sums else self._gradients[index].new_zeros(
            (self._gradients[index].shape[0], 0), dtype=torch.float64)
        collected = torch.cat([sums.new_zeros(sums.shape[0], 1), sums.cumsum(dim=1)], dim=1)[:, :walked]
        return PathSnapshot(
            done=walked, total=self.num_points, t=index / max(self.num_points - 1, 1), image=image,
            gradient=self._gradients[index], partial=self._maps[index],
            collected_t=positions / max(self.num_points - 1, 1), collected=collected,
        )

    def finish(self) -> RecordedPath:
        """Everything in baseline-to-input order; contribution frame f sums the segments since frame f−1."""
        if self._running is None or len(self._sums) != self.num_points - 1:
            raise RuntimeError(f"path incomplete: {len(self._sums)} of {self.num_points - 1} segments recorded")
        order = (lambda values: values[::-1]) if self.reverse else (lambda values: values)
        gradient_frames = contribution_frames = None
        if self._wanted:
            indices = self.frame_indices.tolist()
            # A reversed walk's running map at index p holds the segments above p; the baseline side's is the rest.
            cumulative = [self._running - self._maps[i] if self.reverse else self._maps[i] for i in indices]
            steps = [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]
            gradient_frames = torch.stack([self._gradients[i] for i in indices], dim=1)
            contribution_frames = torch.stack(steps, dim=1)
        return RecordedPath(
            attribution=self._running, segment_sums=torch.stack(order(self._sums), dim=1),
            segment_mass=torch.stack(order(self._mass), dim=1), gradient_frames=gradient_frames,
            contribution_frames=contribution_frames,
        )


def shares(segment_values: torch.Tensor) -> torch.Tensor:
    """[B,N-1] per-segment values -> [B,N] share collected up to each point: 0 at index 0, 1 at the end.

    NaN for an image whose total is 0 (nothing to share out).
    """
    values = segment_values.detach().double()
    cumulative = torch.cat([values.new_zeros(values.shape[0], 1), values.cumsum(dim=1)], dim=1)
    total = cumulative[:, -1:]
    return cumulative / total.where(total != 0, torch.full_like(total, float("nan")))


def half_position(mass_share: torch.Tensor) -> torch.Tensor:
    """[B,N] non-decreasing share -> [B] path position t where it first reaches 1/2, linear between points."""
    share = mass_share.detach().double().cpu()
    steps = max(share.shape[1] - 1, 1)
    result = torch.full((share.shape[0],), float("nan"), dtype=torch.float64)
    for row, values in enumerate(share):
        reached = (values >= 0.5).nonzero()
        if len(reached) == 0:
            continue
        k = int(reached[0])
        if k == 0:
            result[row] = 0.0
            continue
        before, after = float(values[k - 1]), float(values[k])
        result[row] = (k - 1 + (0.5 - before) / (after - before)) / steps
    return result
