"""How long a run will take, said before it starts.

A run's cost is dominated by classifier and decoder passes, whose counts per method follow from the
step count (METHODS.md §2.9, "minimal" column). Multiplying those counts by the seconds one pass takes,
either a model's published cost hint or one quick measured pass on the actual device, gives an estimate
that is good to a factor of about two: enough to warn before a run that would take minutes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch
from torch import nn

from magig_core.explorer.settings import LATENT_METHODS, METHOD_LABELS, RunSettings

SLOW_RUN_SECONDS = 60.0  # above this a CPU user is warned and offered cheaper settings
METRIC_PASSES = 12.0  # insertion/deletion forwards (18, no backward) plus the path-distance forwards
AGI_ITERATIONS = 15
AGI_NEGATIVES = 10


@dataclass(frozen=True)
class StepCost:
    """Seconds per pass for one image at the classifier's input size."""

    classifier: float  # forward + backward to the input
    decoder: float = 0.0  # forward + backward to the latent
    decoder_forward: float = 0.0  # forward only
    source: str = "measured"


@dataclass(frozen=True)
class Estimate:
    per_method: dict[str, float]
    source: str  # where the numbers come from, said next to them

    @property
    def total(self) -> float:
        return sum(self.per_method.values())


class RunHistory:
    """Seconds per path step that finished runs actually took, per (method, models, device).

    Pass counts miss input-dependent work (guided inner loops, MIG's energy descent), so once a method has
    run with the same models, its observed rate replaces the model-based guess.
    """

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str, str, str], float] = {}
        self._lock = threading.Lock()

    def record(self, method: str, settings: RunSettings, device: str, seconds: float) -> None:
        key = (method, settings.classifier, settings.autoencoder, device)
        rate = seconds / settings.steps
        with self._lock:
            previous = self._rates.get(key)
            self._rates[key] = rate if previous is None else 0.5 * (previous + rate)

    def rate(self, method: str, settings: RunSettings, device: str) -> float | None:
        with self._lock:
            return self._rates.get((method, settings.classifier, settings.autoencoder, device))


def method_passes(method: str, steps: int, num_classes: int | None) -> tuple[float, float, float]:
    """(classifier passes, decoder passes, decoder forwards) of one method for one image."""
    n = float(steps)
    if method == "gi":
        return 1.0, 0.0, 0.0
    if method == "agi":
        negatives = min(AGI_NEGATIVES, (num_classes or AGI_NEGATIVES + 1) - 1)
        return 1.5 * AGI_ITERATIONS * negatives, 0.0, 0.0
    if method == "ig2":
        return 2 * n, 0.0, 0.0
    if method == "eig":
        return n, 0.0, n
    if method == "mig":
        return n, 4 * n, 2 * n
    if method == "ma-gig":
        return n, n, 0.0
    return n, 0.0, 0.0  # ig, gig


def estimate(settings: RunSettings, cost: StepCost, num_classes: int | None = None, *,
             history: RunHistory | None = None, device: str = "cpu") -> Estimate:
    """Observed rates from earlier runs where there are any, else pass counts times the pass cost."""
    per_method = {}
    observed = 0
    for method in settings.methods:
        rate = history.rate(method, settings, device) if history is not None else None
        if rate is not None:
            per_method[method] = rate * settings.steps
            observed += 1
            continue
        cls, dec, dec_fwd = method_passes(method, settings.steps, num_classes)
        per_method[method] = (cls + METRIC_PASSES) * cost.classifier + dec * cost.decoder + dec_fwd * cost.decoder_forward
    source = cost.source if not observed else ("from earlier runs" if observed == len(per_method)
                                               else f"from earlier runs and {cost.source}")
    return Estimate(per_method, source)


def describe(result: Estimate, settings: RunSettings, *, on_gpu: bool) -> tuple[str, str | None]:
    """A one-line estimate for the UI and, for slow CPU runs, a warning proposing cheaper settings."""
    parts = ", ".join(f"{METHOD_LABELS[m]} {_duration(s)}" for m, s in result.per_method.items())
    line = f"Estimated run time: **{_duration(result.total)}** ({parts}; {result.source})."
    if on_gpu or result.total <= SLOW_RUN_SECONDS:
        return line, None
    fewer = max(8, int(settings.steps * SLOW_RUN_SECONDS / result.total) // 4 * 4)
    advice = [f"lower the steps to about {fewer}"]
    if LATENT_METHODS.intersection(settings.methods) and "taesd" not in settings.autoencoder:
        advice.append("choose the TAESD autoencoder (about 20× cheaper per step on CPU)")
    if "mig" in settings.methods:
        advice.append("deselect MIG (the slowest method)")
    warning = (f"This run will take about {_duration(result.total)} on the CPU. To get results faster, "
               + ", or ".join(advice) + ".")
    return line, warning


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


_MEASURED: dict[tuple, StepCost] = {}
_MEASURE_LOCK = threading.Lock()


def measure_step_cost(classifier: nn.Module, autoencoder: nn.Module | None, *, repeats: int = 2) -> StepCost:
    """Time one classifier pass and one decoder pass on the models' own device (cached per model pair)."""
    device = next(classifier.parameters()).device
    size = tuple(getattr(classifier, "input_size", (256, 256)))
    key = (_identity(classifier), _identity(autoencoder), str(device), size)
    with _MEASURE_LOCK:
        if key not in _MEASURED:
            image = torch.rand(1, 3, *size, device=device)
            cls = _best_time(lambda: _classifier_pass(classifier, image), repeats)
            dec = dec_fwd = 0.0
            if autoencoder is not None:
                with torch.no_grad():
                    latent = autoencoder.encode(image)
                dec = _best_time(lambda: _decoder_pass(autoencoder, latent), repeats)
                dec_fwd = _best_time(lambda: _decoder_forward(autoencoder, latent), repeats)
            _MEASURED[key] = StepCost(cls, dec, dec_fwd, source=f"measured on {device.type}")
        return _MEASURED[key]


def _identity(model: nn.Module | None) -> object:
    return getattr(model, "name", id(model)) if model is not None else None


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up: first calls pay for allocation and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _classifier_pass(classifier: nn.Module, image: torch.Tensor) -> None:
    x = image.clone().requires_grad_(True)
    classifier(x).softmax(-1)[:, 0].sum().backward()
    _sync(x)


def _decoder_pass(autoencoder: nn.Module, latent: torch.Tensor) -> None:
    z = latent.clone().requires_grad_(True)
    autoencoder.decode(z).sum().backward()
    _sync(z)


@torch.no_grad()
def _decoder_forward(autoencoder: nn.Module, latent: torch.Tensor) -> None:
    _sync(autoencoder.decode(latent))


def _sync(tensor: torch.Tensor) -> None:
    if tensor.device.type == "cuda":
        torch.cuda.synchronize(tensor.device)
