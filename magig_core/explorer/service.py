"""The explorer as one object a front end drives: pick models, read an image, estimate, run, replay.

A web app, a notebook or a script calls the same few methods and gets the same numbers; the front end
only translates widgets to ``RunSettings`` and ``RunState`` to widgets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from magig_core.explorer.cache import ResultCache, run_key
from magig_core.explorer.catalog import DEMO, Catalog, Kind, ModelUnavailableError
from magig_core.explorer.estimate import Estimate, RunHistory, StepCost, estimate, measure_step_cost
from magig_core.explorer.examples import Example, gallery, reference_bank
from magig_core.explorer.runner import (
    MethodResult,
    Prediction,
    RunContext,
    prepare,
    run_methods,
    top_predictions,
)
from magig_core.explorer.settings import LATENT_METHODS, RunSettings, SettingsError, validate
from magig_core.images import ImageSource, load_image, to_tensor
from magig_core.metrics import load_frame_distance
from magig_core.metrics.perceptual import FrameDistance
from magig_core.models.devices import default_device
from magig_core.models.registry import model_info

DECODER_FORWARD_SHARE = 0.35  # a decoder forward's share of its forward+backward, for registry cost hints


@dataclass
class RunState:
    """A run in progress or finished: what every update of a front end shows."""

    settings: RunSettings  # as actually run (after any fallback to the demo models)
    context: RunContext
    results: list[MethodResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # conversions and fallbacks the user should know about
    complete: bool = False
    from_cache: bool = False


class Explorer:
    """Models, examples and caches shared by every request of one process."""

    def __init__(self, device: torch.device | None = None, *, cache_entries: int = 16) -> None:
        self.device = device or default_device()
        self.catalog = Catalog(self.device)
        self.cache = ResultCache(cache_entries)
        self.history = RunHistory()
        self.examples: list[Example] = gallery()
        self._distance: FrameDistance | None = None
        self._banks: dict[tuple[int, int], torch.Tensor] = {}

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
        if LATENT_METHODS.intersection(settings.methods):
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
    def image_tensor(self, source: ImageSource, classifier: nn.Module) -> tuple[torch.Tensor, list[str]]:
        """[1,3,H,W] in [0,1] at the classifier's input size, plus notes on any conversion."""
        loaded = load_image(source)
        size = tuple(getattr(classifier, "input_size", (256, 256)))
        return to_tensor(loaded.image, size), loaded.notes

    def predict(self, source: ImageSource, classifier_name: str) -> tuple[list[Prediction], list[str]]:
        classifier, _, notes = self.classifier(classifier_name)
        image01, image_notes = self.image_tensor(source, classifier)
        return top_predictions(classifier, image01), notes + image_notes

    # Estimates -----------------------------------------------------------------------------------
    def step_cost(self, settings: RunSettings) -> StepCost:
        """Registry cost hints on CPU where they exist, else one measured pass on this device."""
        needs_decoder = bool(LATENT_METHODS.intersection(settings.methods))
        if not self.on_gpu:
            cls_info = model_info(settings.classifier, "classifier")
            dec_info = model_info(settings.autoencoder, "autoencoder") if needs_decoder else None
            hints = [cls_info and cls_info.cpu_seconds_per_step, dec_info and dec_info.cpu_seconds_per_step]
            if hints[0] is not None and (not needs_decoder or hints[1] is not None):
                decoder = hints[1] or 0.0
                return StepCost(hints[0], decoder, decoder * DECODER_FORWARD_SHARE, source="model-zoo CPU cost hints")
        classifier, autoencoder, _, _ = self.models(settings)
        return measure_step_cost(classifier, autoencoder if needs_decoder else None)

    def estimate(self, settings: RunSettings) -> Estimate:
        classifier_names = self.class_names(settings.classifier)
        return estimate(settings, self.step_cost(settings), len(classifier_names) or None, history=self.history,
                        device=str(self.device))

    # Runs ----------------------------------------------------------------------------------------
    # Caching and run-time history live outside ``run`` on purpose: under ZeroGPU ``run`` executes in a
    # forked worker whose memory is discarded, so the caller records finished runs in its own process.
    def cached(self, source: ImageSource, settings: RunSettings) -> RunState | None:
        """A finished run of the same image and settings, if one is cached (no model work)."""
        classifier, _, used, notes = self.models(settings)
        image01, image_notes = self.image_tensor(source, classifier)
        hit = self.cache.get(run_key(image01, used))
        if hit is None:
            return None
        context, results = hit
        return RunState(used, context, list(results), notes + image_notes, complete=True, from_cache=True)

    def remember(self, source: ImageSource, state: RunState) -> None:
        """Store a finished run for replay and learn its seconds per step for later estimates."""
        classifier, _, _ = self.classifier(state.settings.classifier)
        image01, _ = self.image_tensor(source, classifier)
        self.cache.put(run_key(image01, state.settings), (state.context, list(state.results)))
        for result in state.results:
            self.history.record(result.method, state.settings, str(self.device), result.seconds)

    def run(
        self,
        source: ImageSource,
        settings: RunSettings,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Iterator[RunState]:
        """Yield the state after the set-up, after every method, and once more marked complete.

        Raises ``ImageInputError``/``SettingsError`` for bad input and ``RunCancelled`` when stopped.
        """
        classifier, autoencoder, settings, notes = self.models(settings)
        validate(settings, on_gpu=self.on_gpu, num_classes=len(getattr(classifier, "class_names", None) or [])
                 or None)
        image01, image_notes = self.image_tensor(source, classifier)
        notes += image_notes
        distance = self.distance()
        context = prepare(image01, classifier, settings, distance)
        state = RunState(settings, context, [], notes)
        yield state
        references = self.references(tuple(image01.shape[-2:])) if "ig2" in settings.methods else None
        for result in run_methods(image01, classifier, autoencoder, settings, context, distance,
                                  references=references, should_stop=should_stop, on_progress=on_progress):
            state = replace(state, results=[*state.results, result])
            yield state
        yield replace(state, complete=True)

    def distance(self) -> FrameDistance:
        """LPIPS when its backbone weights are cached, else the labelled pixel fallback (loaded once)."""
        if self._distance is None:
            self._distance = load_frame_distance(device=self.device)
        return self._distance

    def references(self, size: tuple[int, int]) -> torch.Tensor:
        if size not in self._banks:
            self._banks[size] = reference_bank(size, self.examples)
        return self._banks[size]


def parse_target(value: str | int | None, class_names: list[str]) -> int | None:
    """A target chooser's value: empty/"top-1" → None, "12", "12: name" or a class name → its index."""
    if value is None or (isinstance(value, str) and (not value.strip() or value.startswith("top-1"))):
        return None
    if isinstance(value, int):
        return value
    match = re.match(r"^\s*(\d+)\s*(:|$)", value)
    if match:
        return int(match.group(1))
    lowered = value.strip().lower()
    for index, name in enumerate(class_names):
        if name.lower() == lowered:
            return index
    raise SettingsError(
        f"Unknown target class {value!r}. Pick a class from the list, type its exact name, or use 'top-1'."
    )
