"""Explain one image with several methods and hand back each method's result as soon as it is ready.

Results are plain numpy (picklable, device-free), so they can cross a process boundary (ZeroGPU workers),
sit in a cache, and be drawn by any front end. Nothing here locks the models: their forward and backward
passes are re-entrant (no module state changes; IG2's probe hook only records its own thread's passes), so
a quick prediction can run between two path steps of an explanation. How many explanations share the
device is the caller's business (``slots.RunSlots``).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from magig_core.attribution import explain, method_spec
from magig_core.attribution.path_record import PathSnapshot, WatchFn
from magig_core.attribution.result import Explanation
from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.live import LiveMap, live_map
from magig_core.explorer.settings import RunSettings
from magig_core.metrics import confidence_curve, reconstruction_psnr
from magig_core.metrics.definitions import METRIC_NAMES
from magig_core.metrics.perceptual import FrameDistance
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores, frame_positions, score
from magig_core.viz import to_uint8

TOP_K = 5
PROGRESS = None  # the index of a progress event in ``stream_methods``' queue


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
    agreement: np.ndarray | None = None  # [H,W] share of the perturbed runs with the pixel in their top 10 %
    pending: bool = False  # the walk is done (map, path, frames are final); the scores are still NaN

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


def run_methods(*inputs: Any, **options: Any) -> Iterator[MethodResult]:
    """One scored ``MethodResult`` per method in ``settings.methods`` order, one method at a time (the
    arguments of ``stream_methods``, less ``workers``); raises ``RunCancelled`` on stop."""
    for _, result in stream_methods(*inputs, **options):
        if not result.pending:
            yield result


def stream_methods(
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
    workers: int = 1,
    live: bool = False,
) -> Iterator[tuple[int, MethodResult | LiveMap]]:
    """(index in ``settings.methods``, result) as soon as each is ready: first the method's map (``pending``:
    its walk is done, its scores follow), then the scored result. With ``live``, a walking method's map so
    far (``LiveMap``) at each of its shown path positions, before its map.

    Up to ``workers`` methods walk at once, each in its own thread followed by its own scoring, so one
    method's scoring overlaps the others' walks (on a CPU each walk uses the threads the run plan gives
    it, one at 64 px; torch releases the GIL inside every pass). Progress is reported from the calling
    thread, as a front end's progress bar expects. A failure or cancellation in one method stops the others
    at their next path step and is raised here.
    """
    methods = list(settings.methods)
    events: queue.Queue = queue.Queue()
    failed = threading.Event()
    fractions = [0.0] * len(methods)

    def stopping() -> bool:
        return failed.is_set() or should_stop()

    def job(index: int, method: str) -> None:
        label = method_spec(method).label

        def progress(text: str) -> None:  # reported from the consuming thread (a front end's own)
            if on_progress is not None:
                events.put((PROGRESS, (sum(fractions) / len(methods), text)))

        def callback(done: int, total: int) -> None:
            if stopping():
                raise RunCancelled(f"Cancelled during {label}.")
            fractions[index] = done / max(total, 1)
            progress(f"{label}: step {done}/{total}")

        try:
            if stopping():
                raise RunCancelled(f"Cancelled before {label}.")
            progress(f"{label}: starting")
            def watch(snapshot: PathSnapshot) -> None:  # the map forming, at every shown path position
                events.put((index, live_map(method, snapshot)))

            explanation, seconds = walk_method(method, image01, classifier, autoencoder, settings, context,
                                               references=references, callback=callback,
                                               watch=watch if live else None)
            fractions[index] = 1.0
            events.put((index, _method_result(method, explanation, pending_scores(explanation), seconds,
                                              pending=True)))
            (scores,) = score(explanation, classifier, explanation_images(image01, classifier), distance=distance,
                              autoencoder=autoencoder)
            events.put((index, _method_result(method, explanation, scores, seconds)))
        except BaseException as error:  # handed to the consuming thread, which raises it
            failed.set()
            events.put((index, error))

    pool = ThreadPoolExecutor(max(1, min(workers, len(methods))), thread_name_prefix="magig-method")
    try:
        for index, method in enumerate(methods):
            pool.submit(job, index, method)
        delivered = 0
        while delivered < 2 * len(methods):
            index, item = events.get()
            if isinstance(item, BaseException):
                raise item
            if index is PROGRESS:
                on_progress(*item)
                continue
            if isinstance(item, LiveMap):
                yield index, item
                continue
            delivered += 1
            yield index, item
    finally:
        failed.set()  # a consumer that stopped early (or an error) stops the walks still running
        pool.shutdown(wait=True, cancel_futures=True)


def explanation_images(image01: torch.Tensor, classifier: nn.Module) -> torch.Tensor:
    """The input on the classifier's device, as ``walk_method`` explained it."""
    return image01.to(next(classifier.parameters()).device)


def pending_scores(explanation: Explanation) -> Scores:
    """The scores of a map whose scoring has not finished yet: NaN, but for t50, which the walk itself gives
    (so the accumulation plot is complete as soon as the map is shown)."""
    values = {name: math.nan for name in METRIC_NAMES}
    if explanation.t50 is not None:
        values["t50"] = float(explanation.t50[0])
    return Scores(target=int(explanation.targets[0]), values=values)


def walk_method(
    method: str,
    image01: torch.Tensor,
    classifier: nn.Module,
    autoencoder: nn.Module | None,
    settings: RunSettings,
    context: RunContext,
    *,
    references: torch.Tensor | None = None,
    callback: Callable[[int, int], None] | None = None,
    watch: WatchFn | None = None,
) -> tuple[Explanation, float]:
    """One method's explanation of the run's image and its seconds."""
    device = next(classifier.parameters()).device
    spec = method_spec(method)
    start = time.perf_counter()
    result = explain(
        image01.to(device), classifier, method,
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
        **settings.repeats(),
    )
    return result, time.perf_counter() - start


def _method_result(method: str, result: Explanation, scores: Scores, seconds: float, *,
                   pending: bool = False) -> MethodResult:
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
        agreement=None if result.agreement is None else result.agreement[0].detach().float().cpu().numpy(),
        pending=pending,
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

