"""What every method needs about one ``explain`` call, resolved once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from magig_core.attribution.model import NormalizedModel

ProgressCallback = Callable[[int, int], None]


@dataclass
class Context:
    model: NormalizedModel
    inputs01: torch.Tensor  # [B,C,H,W] raw images in [0,1]
    baseline01: torch.Tensor  # [B,C,H,W] raw baseline in [0,1]
    targets: torch.Tensor  # [B]
    objective: str
    chunk_rows: int  # rows (images x path points) per batched classifier/decoder pass
    input_probs: torch.Tensor  # [B] target probability at the raw input
    callback: ProgressCallback | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.inputs01.shape[0])

    @property
    def inputs(self) -> torch.Tensor:
        return self.model.normalize(self.inputs01)

    @property
    def baseline(self) -> torch.Tensor:
        return self.model.normalize(self.baseline01)

    @property
    def points_per_chunk(self) -> int:
        return max(1, self.chunk_rows // self.batch_size)

    def report(self, done: int, total: int) -> None:
        if self.callback is not None:
            self.callback(done, total)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Accumulate wall time per phase; synchronizes CUDA so GPU work is charged to its own phase."""
        synchronize(self.inputs01.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.inputs01.device)
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
