"""The explorer as one object a front end drives: pick models, read an image, estimate, run, replay.

A web app, a notebook or a script calls the same few methods and gets the same numbers; the front end
only translates widgets to ``RunSettings`` and ``RunState`` to widgets.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from magig_core import runtime
from magig_core.attribution import method_spec
from magig_core.explorer.cancel import StopPoll, never
from magig_core.explorer.catalog import DEMO, Catalog, Kind, ModelUnavailableError
from magig_core.explorer.compute import (
    MethodResult,
    Prediction,
    RunContext,
    class_probabilities,
    prepare,
    stream_methods,
    top_predictions,
)
from magig_core.explorer.estimate import (
    Estimate,
    PassSeconds,
    RunHistory,
    describe_wait,
    estimate,
    measure_pass_cost,
)
from magig_core.explorer.examples import Example, gallery, reference_bank
from magig_core.explorer.image_cache import DecodedImages
from magig_core.explorer.live import LiveMap
from magig_core.explorer.result_cache import ResultCache, run_key
from magig_core.explorer.settings import RunSettings, validate
from magig_core.explorer.slots import RunSlots
from magig_core.explorer.warmup import Activity, Warmer, plan, visitor_call
from magig_core.forking import ChildSafeLock
from magig_core.images import ImageSource
from magig_core.metrics import load_frame_distance
from magig_core.metrics.perceptual import FrameDistance
from magig_core.models.devices import default_device
from magig_core.models.zoo import model_info

HINT_SIDE = 256  # the registry's CPU cost hints are for 256×256 images
MEASURE_BELOW_SECONDS = 0.5  # cheaper passes are measured on the spot; dearer ones taken from the hints
PLANS_KEPT = 1024  # announced runs remembered for wait estimates (one per visitor; old ones dropped first)


@dataclass
class RunState:
    """A run in progress or finished: what every update of a front end shows."""

    settings: RunSettings  # as actually run (after any fallback to the demo models)
    context: RunContext
    results: list[MethodResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # conversions and fallbacks the user should know about
    complete: bool = False
    from_cache: bool = False
    live: LiveMap | None = None  # the running method's map while its path is walked (``run(live=True)``)
    overhead_seconds: float | None = None  # a complete run's set-up plus its time after the last walk ended

    @property
    def scored(self) -> bool:
        """Every method's map and scores are in (a map shown before its scores is ``pending``)."""
        return len(self.results) == len(self.settings.methods) and not any(r.pending for r in self.results)


class Explorer:
    """Models, examples and caches shared by every request of one process.

    Memory stays bounded however many visitors come: decoded uploads and finished runs live in LRU caches
    bounded in bytes, and at most ``run_slots`` explanations hold intermediate tensors at once.
    """

    def __init__(self, device: torch.device | None = None, *, run_slots: int = 1, cache_entries: int = 16,
                 cache_bytes: int = 256 << 20, image_bytes: int = 64 << 20) -> None:
        self.device = device or default_device()
        self.catalog = Catalog(self.device)
        self.cache = ResultCache(cache_entries, cache_bytes)
        self.images = DecodedImages(image_bytes)
        self.slots = RunSlots(run_slots)
        self.history = RunHistory()
        self.examples: list[Example] = gallery()
        self.activity = Activity()  # visitor calls in progress; background warm-up yields to them
        self._distance: FrameDistance | None = None
        self._distance_lock = ChildSafeLock()  # held while LPIPS loads: see magig_core.forking
        self._banks: dict[tuple[int, int], torch.Tensor] = {}
        self._plans: OrderedDict[str, float] = OrderedDict()  # visitor → expected seconds of their next run
        self._plans_lock = threading.Lock()

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    # Models --------------------------------------------------------------------------------------
    def models(self, settings: RunSettings) -> tuple[nn.Module, nn.Module | None, RunSettings, list[str]]:
        """Load the chosen models; an unavailable one is replaced by the demo model, with a note saying why."""
        classifier, used, notes = self.classifier(settings.classifier)
        if used != settings.classifier:
            settings = replace(settings, classifier=used, target=None)
        autoencoder = None
        if settings.autoencoder:  # the latent methods' path space, and the manifold diagnostics for every path
            autoencoder, used, more = self.autoencoder(settings.autoencoder)
            settings, notes = replace(settings, autoencoder=used), notes + more
        return classifier, autoencoder, settings, notes

    def classifier(self, name: str) -> tuple[nn.Module, str, list[str]]:
        """The named classifier, or the demo classifier plus a note when it cannot be loaded."""
        return self._load("classifier", name)

    def autoencoder(self, name: str) -> tuple[nn.Module, str, list[str]]:
        return self._load("autoencoder", name)

    def _load(self, kind: Kind, name: str) -> tuple[nn.Module, str, list[str]]:
        try:
            return self.catalog.load(kind, name), name, []
        except ModelUnavailableError as err:
            return self.catalog.load(kind, DEMO), DEMO, [f"{err}\n\nUsing the bundled {DEMO!r} {kind} instead."]

    def class_names(self, classifier_name: str) -> list[str]:
        classifier, _, _ = self.classifier(classifier_name)
        return list(getattr(classifier, "class_names", None) or [])

    # Images --------------------------------------------------------------------------------------
    def image_tensor(self, source: ImageSource, classifier: nn.Module,
                     size: int | None = None) -> tuple[torch.Tensor, list[str]]:
        """[1,3,H,W] in [0,1] at the working size (default: the classifier's input size), plus notes.

        A file is decoded once per version and working size (``DecodedImages``), however many requests read it.
        """
        return self.images.tensor(source, working_size(classifier, size))

    @visitor_call
    def predict(self, source: ImageSource, classifier_name: str,
                size: int | None = None) -> tuple[list[Prediction], list[str]]:
        """Top-5 classes: one forward pass, never waiting for the explanations that hold the device."""
        classifier, _, notes = self.classifier(classifier_name)
        image01, image_notes = self.image_tensor(source, classifier, size)
        return top_predictions(class_probabilities(classifier, image01), classifier), notes + image_notes

    # Estimates -----------------------------------------------------------------------------------
    def pass_cost(self, settings: RunSettings) -> PassSeconds:
        """Seconds per network pass at the run's size: measured on the spot, unless a pass costs seconds."""
        hinted = None if self.on_gpu else hinted_pass_cost(settings)
        if hinted is not None:
            return hinted
        classifier, autoencoder, used, _ = self.models(settings)
        return measure_pass_cost(classifier, autoencoder if used.needs_autoencoder else None,
                                 working_size(classifier, used.size))

    @visitor_call
    def estimate(self, settings: RunSettings) -> Estimate:
        classifier_names = self.class_names(settings.classifier)
        return estimate(settings, self.pass_cost(settings), len(classifier_names) or None, history=self.history,
                        device=str(self.device), workers=self.parallel_methods())

    # Waiting -------------------------------------------------------------------------------------
    def plan(self, visitor: str, seconds: float) -> None:
        """Remember how long a visitor's requested run is expected to take (for the wait of those behind)."""
        with self._plans_lock:
            self._plans[visitor] = seconds
            self._plans.move_to_end(visitor)
            while len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)

    def expected_wait(self, ahead: Sequence[str], default_seconds: float) -> float:
        """Seconds until a run queued behind ``ahead`` (visitors, first in line first) gets the device.

        A visitor whose plan is unknown (a script calling the API directly) counts ``default_seconds``.
        """
        with self._plans_lock:
            queued = [self._plans.get(visitor, default_seconds) for visitor in ahead]
        return self.slots.expected_wait(queued)

    def wait_line(self, visitor: str, waiting: Sequence[str], own: Estimate) -> str | None:
        """Plan the visitor's run and say how long it will wait behind the queue; None when it starts at once.

        ``waiting``: the visitors queued for the device, first in line first; only those ahead of this one
        count (all of them when the visitor's own run is not queued yet).
        """
        self.plan(visitor, own.total)
        ahead = list(waiting[:list(waiting).index(visitor)] if visitor in waiting else waiting)
        return describe_wait(self.slots.busy + len(ahead), self.expected_wait(ahead, own.total), own)

    # Runs ----------------------------------------------------------------------------------------
    # Caching and run-time history live outside ``run`` on purpose: under ZeroGPU ``run`` executes in a
    # forked worker whose memory is discarded, so the caller records finished runs in its own process.
    def cached(self, source: ImageSource, settings: RunSettings) -> RunState | None:
        """A finished run of the same image and settings, if one is cached (no model work)."""
        classifier, _, used, notes = self.models(settings)
        image01, image_notes = self.image_tensor(source, classifier, used.size)
        hit = self.cache.get(run_key(image01, used))
        if hit is None:
            return None
        context, results = hit
        return RunState(used, context, list(results), notes + image_notes, complete=True, from_cache=True)

    def remember(self, source: ImageSource, state: RunState) -> None:
        """Store a finished run for replay and learn its seconds per step for later estimates."""
        classifier, _, _ = self.classifier(state.settings.classifier)
        image01, _ = self.image_tensor(source, classifier, state.settings.size)
        self.cache.put(run_key(image01, state.settings), (state.context, list(state.results)))
        for result in state.results:
            self.history.record(result.method, state.settings, str(self.device), result.seconds)
        if state.overhead_seconds is not None:
            self.history.record_overhead(state.settings, str(self.device), state.overhead_seconds)

    @visitor_call
    def run(
        self,
        source: ImageSource,
        settings: RunSettings,
        *,
        should_stop: StopPoll = never,
        on_progress: Callable[[float, str], None] | None = None,
        live: bool = False,
    ) -> Iterator[RunState]:
        """Yield the state after the set-up, after every method, and once more marked complete; with ``live``,
        also at every shown path position of the running method, carrying its running map.

        The methods run while holding one of the device's ``slots``; ``should_stop`` is polled while waiting
        for it and at every path step. Raises ``ImageInputError``/``SettingsError`` for bad input and
        ``RunCancelled`` when stopped.
        """
        started = time.perf_counter()
        classifier, autoencoder, settings, notes = self.models(settings)
        settings = validate(settings, on_gpu=self.on_gpu,
                            num_classes=len(getattr(classifier, "class_names", None) or []) or None)
        image01, image_notes = self.image_tensor(source, classifier, settings.size)
        notes += image_notes
        distance = self.distance()
        context = prepare(image01, classifier, settings, distance, autoencoder)
        state = RunState(settings, context, [], notes)
        set_up = time.perf_counter() - started
        yield state
        draws = any(method_spec(m).draws_references for m in settings.methods)
        references = self.references(tuple(image01.shape[-2:])) if draws else None
        # background work (the gallery warm-up) gives way to any visitor within a step: nobody waits for it
        expected = 0.0 if self.activity.in_background else self.estimate(settings).total
        ready: dict[int, MethodResult] = {}
        walks_ended = time.perf_counter()
        with self.slots.hold(expected, should_stop):
            for index, result in stream_methods(image01, classifier, autoencoder, settings, context, distance,
                                                references=references, should_stop=should_stop,
                                                on_progress=on_progress, workers=self.parallel_methods(),
                                                live=live):
                if isinstance(result, LiveMap):
                    yield replace(state, live=result)
                    continue
                ready[index] = result
                if result.pending and len(ready) == len(settings.methods):
                    walks_ended = time.perf_counter()
                state = replace(state, results=[ready[i] for i in sorted(ready)])
                yield state
        yield replace(state, complete=True, overhead_seconds=set_up + time.perf_counter() - walks_ended)

    def parallel_methods(self) -> int:
        """Methods of one run that walk side by side: on a CPU, as many as the run's share of the cores
        holds at the threads each walk uses (one thread at 64 px: two methods on two cores); one on a GPU."""
        if self.on_gpu:
            return 1
        share = runtime.available_cores() // max(1, self.slots.limit)
        return max(1, share // max(1, torch.get_num_threads()))

    def warm_examples(self, settings_for: Callable[[Example], RunSettings | None], **limits) -> Warmer:
        """Start computing the gallery's results in a background thread (``warmup.Warmer``; ``limits``:
        ``budget_seconds``, ``max_run_seconds``), so clicks on examples replay them."""
        return Warmer(self, plan(self.examples, settings_for), **limits).start()

    def distance(self) -> FrameDistance:
        """LPIPS when its backbone weights are cached, else the labelled pixel fallback (loaded once)."""
        with self._distance_lock:
            if self._distance is None:
                self._distance = load_frame_distance(device=self.device)
            return self._distance

    def references(self, size: tuple[int, int]) -> torch.Tensor:
        if size not in self._banks:
            self._banks[size] = reference_bank(size, self.examples)
        return self._banks[size]


def hinted_pass_cost(settings: RunSettings) -> PassSeconds | None:
    """The zoo's CPU cost hints, scaled to the image area, when a pass would take seconds.

    Measuring such a model (a full VAE on a CPU) would itself take seconds, and the hints need no model
    loaded; cheaper models are better measured. None when a model has no hint or passes are cheap.
    """
    infos = [model_info(settings.classifier, "classifier")]
    if settings.needs_autoencoder:
        infos.append(model_info(settings.autoencoder, "autoencoder"))
    seconds = [info.cpu_seconds_per_step if info is not None else None for info in infos]
    if None in seconds:
        return None
    side = settings.size or HINT_SIDE
    scaled = [value * side * side / HINT_SIDE**2 for value in seconds]
    if max(scaled) <= MEASURE_BELOW_SECONDS:
        return None
    return PassSeconds.from_hints(scaled[0], scaled[1] if len(scaled) > 1 else 0.0, source="model-zoo CPU cost hints")


def working_size(classifier: nn.Module, size: int | None) -> tuple[int, int]:
    """(H, W) the image is explained at: the chosen size, else the classifier's own input size."""
    if size is not None:
        return size, size
    return tuple(getattr(classifier, "input_size", (256, 256)))  # type: ignore[return-value]
