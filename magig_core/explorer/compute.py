"""Explain one image with several methods and hand back each method's result as soon as it is ready.

Results are plain numpy (picklable, device-free), so they can cross a process boundary (ZeroGPU workers),
sit in a cache, and be drawn by any front end. Nothing here locks the models: their forward and backward
passes are re-entrant (no module state changes; IG2's probe hook only records its own thread's passes), so
a quick prediction can run between two path steps of an explanation. How many explanations share the
device is the caller's business (``slots.RunSlots``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from magig_core.attribution import explain, method_spec
from magig_core.attribution.path_record import WatchFn
from magig_core.attribution.result import Explanation
from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.live import LiveMap, stream
from magig_core.explorer.settings import RunSettings
from magig_core.metrics import confidence_curve, reconstruction_psnr
from magig_core.metrics.perceptual import FrameDistance
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores, frame_positions, score
from magig_core.viz import to_uint8

TOP_K = 5


@dataclass
class Prediction:
    index: int
    name: str
    probability: float


@dataclass
class RunContext:
    """What every method of one run shares: the input as the classifier sees it and the class explained."""

    image: np.ndarray  # uint8 [H,W,3], resized input
    target: int
    target_name: str
    target_probability: float  # p(target) on the input: the scale the Insertion/Deletion numbers live on
    predictions: list[Prediction]  # top-k on the input
    distance_name: str  # "lpips-alex-v0.1" or the fallback's name
    distance_note: str | None  # why a fallback distance is used, if it is
    reconstruction_psnr: float | None = None  # the autoencoder's PSNR (dB) on the input; None without one


@dataclass
class MethodResult:
    """The app's view of one method: its ``ScoredMethod`` (what the table, report and CLI share) plus the
    pictures and curves the viewer draws, all numpy on the CPU."""

    scored: ScoredMethod
    attributions: np.ndarray  # float32 [3,H,W], per element of the normalized input
    path_t: np.ndarray  # [N] normalized path positions
    path_probs: np.ndarray  # [N] target probability along the path
    frames: np.ndarray | None  # uint8 [F,H,W,3] path images (clamped for display)
    frame_t: np.ndarray | None  # [F]
    frame_probs: np.ndarray | None  # [F]
    gradient_frames: np.ndarray | None = None  # float32 [F,3,H,W] objective's input gradient at each frame
    contribution_frames: np.ndarray | None = None  # float32 [F,3,H,W] g ⊙ Δx collected since the previous frame
    accumulation: np.ndarray | None = None  # [N] signed share of ΣA collected up to each path point
    accumulation_mass: np.ndarray | None = None  # [N] share of the absolute contribution mass collected

    @property
    def distances(self) -> np.ndarray | None:
        """[F] distance of each frame to the input."""
        return _curve(self.scores, "distance")

    @property
    def off_manifold(self) -> np.ndarray | None:
        """[F] distance of each frame to its own autoencoder reconstruction."""
        return _curve(self.scores, "off_manifold")

    @property
    def method(self) -> str:
        return self.scored.method

    @property
    def scores(self) -> Scores:
        """Every metric of ``metrics.METRICS`` and the path distances at the frames."""
        return self.scored.scores

    @property
    def seconds(self) -> float:
        return self.scored.seconds

    @property
    def label(self) -> str:
        return self.scored.label

    def frame_at(self, t: float) -> int | None:
        """Index of the frame nearest to path position t, or None for a method without a path."""
        if self.frame_t is None or not len(self.frame_t):
            return None
        return int(np.abs(self.frame_t - t).argmin())


def class_name(classifier: nn.Module, index: int) -> str:
    names = getattr(classifier, "class_names", None)
    return names[index] if names is not None and 0 <= index < len(names) else f"class {index}"


@torch.no_grad()
def class_probabilities(classifier: nn.Module, image01: torch.Tensor) -> torch.Tensor:
    """Softmax over all classes for one [1,3,H,W] image: [K] float64 on the CPU (one forward pass)."""
    device = next(classifier.parameters()).device
    return classifier(image01.to(device)).softmax(-1)[0].double().cpu()


def top_predictions(probs: torch.Tensor, classifier: nn.Module, k: int = TOP_K) -> list[Prediction]:
    """The k most probable classes from ``class_probabilities``."""
    values, indices = probs.topk(min(k, probs.numel()))
    return [Prediction(int(i), class_name(classifier, int(i)), float(v)) for v, i in zip(values, indices,
                                                                                          strict=True)]


def prepare(image01: torch.Tensor, classifier: nn.Module, settings: RunSettings,
            distance: FrameDistance, autoencoder: nn.Module | None = None) -> RunContext:
    """Predict, fix the target class (top-1 unless one was chosen), describe the path distance and measure
    how well the autoencoder reconstructs the input (the manifold the latent paths live on)."""
    probs = class_probabilities(classifier, image01)
    predictions = top_predictions(probs, classifier)
    target = predictions[0].index if settings.target is None else settings.target
    return RunContext(
        image=to_uint8(image01[0]),
        target=target,
        target_name=class_name(classifier, target),
        target_probability=float(probs[target]),
        predictions=predictions,
        distance_name=distance.name,
        distance_note=distance.reason,
        reconstruction_psnr=float(reconstruction_psnr(autoencoder, image01)[0]) if autoencoder is not None else None,
    )


def run_methods(
    image01: torch.Tensor,
    classifier: nn.Module,
    autoencoder: nn.Module | None,
    settings: RunSettings,
    context: RunContext,
    distance: FrameDistance,
    *,
    references: torch.Tensor | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[float, str], None] | None = None,
    live: bool = False,
) -> Iterator[MethodResult | LiveMap]:
    """Yield one ``MethodResult`` per method in ``settings.methods`` order; raise ``RunCancelled`` on stop.

    With ``live``, each method's running map (``LiveMap``) comes before its result at every shown path position.
    """
    count = len(settings.methods)
    for position, method in enumerate(settings.methods):
        label = method_spec(method).label

        def one(watch: WatchFn | None, progress: Callable[[float, str], None] | None, method: str = method,
                position: int = position, label: str = label) -> MethodResult:
            def callback(done: int, total: int) -> None:
                if should_stop():
                    raise RunCancelled(f"Cancelled during {label}.")
                if progress is not None:
                    progress((position + done / max(total, 1)) / count, f"{label}: step {done}/{total}")

            return run_method(method, image01, classifier, autoencoder, settings, context, distance,
                              references=references, callback=callback, watch=watch)

        if should_stop():
            raise RunCancelled(f"Cancelled before {label}.")
        if on_progress is not None:
            on_progress(position / count, f"{label}: starting")
        if live:
            yield from stream(method, one, on_progress)
        else:
            yield one(None, on_progress)


def run_method(
    method: str,
    image01: torch.Tensor,
    classifier: nn.Module,
    autoencoder: nn.Module | None,
    settings: RunSettings,
    context: RunContext,
    distance: FrameDistance,
    *,
    references: torch.Tensor | None = None,
    callback: Callable[[int, int], None] | None = None,
    watch: WatchFn | None = None,
) -> MethodResult:
    """Explain with one method and score it: faithfulness for the target class, completeness, path curves."""
    device = next(classifier.parameters()).device
    image01 = image01.to(device)
    spec = method_spec(method)
    start = time.perf_counter()
    result = explain(
        image01, classifier, method,
        autoencoder=autoencoder,
        targets=[context.target],
        objective=settings.objective,
        frames=settings.num_frames if spec.has_frames else 0,
        references=references.to(device) if references is not None else None,
        precision=settings.precision,
        seed=settings.seed,
        callback=callback,
        watch=watch,
        **settings.options_for(method),
    )
    seconds = time.perf_counter() - start
    (scores,) = score(result, classifier, image01, distance=distance, autoencoder=autoencoder)
    return _method_result(method, result, scores, seconds)


def _method_result(method: str, result: Explanation, scores: Scores, seconds: float) -> MethodResult:
    """Numpy copies of what the viewer draws; the numbers are the scoring step's."""
    confidence = confidence_curve(result)
    has_frames = result.frames is not None and result.frames.shape[1] > 0
    return MethodResult(
        scored=ScoredMethod(method, scores, seconds, dict(result.config)),
        attributions=result.attributions[0].detach().float().cpu().numpy(),
        path_t=confidence.t.numpy(),
        path_probs=confidence.values[0].numpy(),
        frames=np.stack([to_uint8(f) for f in result.frames[0]]) if has_frames else None,
        frame_t=frame_t.numpy() if (frame_t := frame_positions(result)) is not None else None,
        frame_probs=result.frame_probs[0].detach().double().cpu().numpy() if has_frames else None,
        **path_record_arrays(result),
    )


def _curve(scores: Scores, name: str) -> np.ndarray | None:
    values = scores.curves.get(name)
    return None if values is None else np.asarray(values, dtype=np.float64)


def path_record_arrays(result: Explanation) -> dict[str, np.ndarray | None]:
    """The first image's gradient and contribution frames and accumulation curves, as numpy (None without)."""
    def first(tensor: torch.Tensor | None) -> np.ndarray | None:
        return None if tensor is None else tensor[0].detach().cpu().numpy()

    def frames(tensor: torch.Tensor | None) -> np.ndarray | None:
        return None if tensor is None or tensor.shape[1] == 0 else first(tensor.float())

    return {"gradient_frames": frames(result.gradient_frames),
            "contribution_frames": frames(result.contribution_frames),
            "accumulation": first(result.accumulation), "accumulation_mass": first(result.accumulation_mass)}

