"""What every method needs about one ``explain`` call, resolved and checked once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from magig_core.attribution import validation as check
from magig_core.attribution.integrator import PathIntegrator
from magig_core.attribution.model import (
    NormalizedModel,
    gradient_pass,
    model_device,
    objective_values,
    target_probabilities,
    wrap_classifier,
)
from magig_core.attribution.path_record import WatchFn
from magig_core.attribution.spaces import Autoencoder
from magig_core.errors import ArgumentError

ProgressCallback = Callable[[int, int], None]
OBJECTIVES = ("prob", "logit")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class MethodInputs:
    model: NormalizedModel
    inputs01: torch.Tensor  # [B,C,H,W] raw images in [0,1]
    baseline01: torch.Tensor  # [B,C,H,W] raw baseline in [0,1]
    targets: torch.Tensor  # [B]
    objective: str
    chunk_rows: int  # rows (images x path points) per batched classifier/decoder pass
    input_logits: torch.Tensor  # [B,K] at the raw input
    baseline_logits: torch.Tensor  # [B,K] at the raw baseline
    frames: int = 0  # path images to keep, evenly spaced
    autoencoder: Autoencoder | None = None
    references01: torch.Tensor | None = None  # IG2's reference bank, [R,C,H,W] in [0,1]
    seed: int = 0
    substeps: int = 1  # gradients per segment of the pixel path (1: the paper's left-point rule)
    callback: ProgressCallback | None = None
    watch: WatchFn | None = None  # called at every shown path position with the walk's state there
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return int(self.inputs01.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.input_logits.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.inputs01.dtype

    @property
    def inputs(self) -> torch.Tensor:
        return self.model.normalize(self.inputs01)

    @property
    def baseline(self) -> torch.Tensor:
        return self.model.normalize(self.baseline01)

    @property
    def input_probs(self) -> torch.Tensor:
        return target_probabilities(self.input_logits, self.targets)

    @property
    def input_output(self) -> torch.Tensor:
        return objective_values(self.input_logits, self.targets, self.objective)

    @property
    def baseline_output(self) -> torch.Tensor:
        return objective_values(self.baseline_logits, self.targets, self.objective)

    @property
    def points_per_chunk(self) -> int:
        return max(1, self.chunk_rows // self.batch_size)

    def path_integrator(self, num_points: int) -> PathIntegrator:
        """An integrator for a path of ``num_points`` with this call's frames and segment refinement."""
        return PathIntegrator(num_points, self.frames, self.model.denormalize, substeps=self.substeps,
                              gradient_fn=self._gradients, watch=self.watch)

    def _gradients(self, images: torch.Tensor) -> torch.Tensor:
        """Input gradients of the objective at extra points, ``len(images) / B`` points of every image."""
        grads = []
        with torch.enable_grad():
            for part in images.split(max(self.batch_size, self.chunk_rows // self.batch_size * self.batch_size)):
                part = part.detach().requires_grad_(True)
                targets = self.targets.repeat(part.shape[0] // self.batch_size)
                grads.append(gradient_pass(self.model, part, targets, self.objective, [part]).grads[0])
        return torch.cat(grads)

    def endpoint(self, image: torch.Tensor, with_gradient: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits at a walk's last point, and its input gradient only when that point is shown (one backward)."""
        if not with_gradient:
            with torch.no_grad():
                return self.model.forward(image), None
        point = image.detach().requires_grad_(True)
        result = gradient_pass(self.model, point, self.targets, self.objective, [point])
        return result.logits, result.grads[0]

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


def build_context(
    images: torch.Tensor,
    classifier: nn.Module,
    *,
    autoencoder: Autoencoder | None,
    targets: torch.Tensor | list[int] | int | None,
    objective: str,
    frames: int,
    baseline: torch.Tensor | None,
    references: torch.Tensor | None,
    chunk_size: int | None,
    precision: str,
    seed: int,
    callback: ProgressCallback | None,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    substeps: int = 1,
    watch: WatchFn | None = None,
) -> MethodInputs:
    """Check every shared argument, move the images to the classifier's device and run it once on both ends."""
    images = check.check_images(images)
    device = model_device(classifier, images.device)
    images = images.to(device)
    baseline01 = _resolve_baseline(baseline, images)
    check.check_choice(objective, OBJECTIVES, "objective")
    model = wrap_classifier(classifier, device=device, dtype=images.dtype,
                            autocast_dtype=_autocast_dtype(precision, device), normalization=normalization)
    with torch.no_grad():
        logits = model.forward(model.normalize(torch.cat([images, baseline01])))
    input_logits, baseline_logits = logits.split(images.shape[0])
    chosen = (input_logits.argmax(dim=1) if targets is None
              else check.check_targets(targets, images.shape[0], int(input_logits.shape[1]), device))
    if references is not None:
        references = check.check_images(references, "references").to(device=device, dtype=images.dtype)
    return MethodInputs(
        model=model, inputs01=images, baseline01=baseline01, targets=chosen, objective=objective,
        chunk_rows=_chunk_rows(chunk_size, device), input_logits=input_logits, baseline_logits=baseline_logits,
        frames=check.check_nonnegative_int(frames, "frames"), autoencoder=autoencoder, references01=references,
        seed=seed, substeps=_check_substeps(substeps), callback=callback, watch=watch,
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resolve_baseline(baseline: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(images)
    baseline = check.check_images(baseline, "baseline").to(device=images.device, dtype=images.dtype)
    if baseline.shape[1:] != images.shape[1:] or baseline.shape[0] not in (1, images.shape[0]):
        raise ArgumentError(f"baseline shape {tuple(baseline.shape)} does not match images {tuple(images.shape)}")
    return baseline.expand_as(images).contiguous()


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    check.check_choice(precision, tuple(PRECISIONS), "precision")
    if precision == "fp16" and device.type != "cuda":
        raise ArgumentError("precision='fp16' needs a CUDA device; use 'bf16' or 'fp32' on the CPU")
    return PRECISIONS[precision]


def _check_substeps(substeps: int) -> int:
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise ArgumentError(f"substeps must be a positive integer (gradients per path segment); got {substeps!r}")
    return substeps


def _chunk_rows(chunk_size: int | None, device: torch.device) -> int:
    if chunk_size is None:
        return 64 if device.type == "cuda" else 16
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ArgumentError(f"chunk_size must be a positive integer (rows per batched pass); got {chunk_size!r}")
    return chunk_size
