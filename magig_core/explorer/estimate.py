"""How long a run will take, said before it starts.

A run's cost is dominated by classifier and decoder passes. Each method's spec counts them per image
(``MethodSpec.cost``); multiplying by the seconds one pass takes (measured on the actual device and
size, or a model's published cost hint) gives the estimate. Once a method has run with the same models,
its observed seconds per step replace the guess.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import torch
from torch import nn

from magig_core.attribution import method_spec
from magig_core.explorer.settings import RunSettings
from magig_core.forking import ChildSafeLock
from magig_core.models.zoo import fastest_autoencoder

SLOW_RUN_SECONDS = 60.0  # above this a CPU user is warned and offered cheaper settings
METRIC_FORWARDS = 22.0  # insertion/deletion (18), prediction and path-distance forwards per method
FORWARD_SHARE = 0.35  # a forward pass's share of forward+backward, to split published fwd+bwd hints


@dataclass(frozen=True)
class PassSeconds:
    """Seconds per pass for one image at the run's size."""

    classifier_forward: float
    classifier_backward: float
    decoder_forward: float = 0.0
    decoder_backward: float = 0.0
    source: str = "measured"

    @classmethod
    def from_hints(cls, classifier: float, decoder: float, source: str) -> PassSeconds:
        """Split forward+backward hints into their forward and backward parts."""
        return cls(FORWARD_SHARE * classifier, (1 - FORWARD_SHARE) * classifier,
                   FORWARD_SHARE * decoder, (1 - FORWARD_SHARE) * decoder, source)


@dataclass(frozen=True)
class Estimate:
    per_method: dict[str, float]
    source: str  # where the numbers come from, said next to them
    workers: int = 1  # methods that run side by side
    overhead: float = 0.0  # set-up and the work after the last walk (scores, files), as earlier runs took

    @property
    def total(self) -> float:
        """Wall time: the methods spread over ``workers`` in the order they start (each takes the first free
        worker), so the longest chain of methods on one worker, plus the overhead."""
        finish = [0.0] * max(1, self.workers)
        for seconds in self.per_method.values():
            finish[finish.index(min(finish))] += seconds
        return max(finish) + self.overhead


def method_steps(method: str, settings: RunSettings) -> int:
    """The steps this method will actually walk with these settings, over all its perturbed runs (1 per run
    for a method without steps)."""
    options = method_spec(method).make_options(settings.options_for(method))
    return int(getattr(options, "steps", 1)) * settings.runs


class RunHistory:
    """Seconds per step that finished runs took, per (method, models, device), and the seconds a run spent
    beyond its walks, per (models, device): about a second at 64 px, a third of a quick look."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str, str, str], float] = {}
        self._overheads: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def record(self, method: str, settings: RunSettings, device: str, seconds: float) -> None:
        key = (method, settings.classifier, settings.autoencoder, device)
        rate = seconds / method_steps(method, settings)
        with self._lock:
            previous = self._rates.get(key)
            self._rates[key] = rate if previous is None else 0.5 * (previous + rate)

    def rate(self, method: str, settings: RunSettings, device: str) -> float | None:
        with self._lock:
            return self._rates.get((method, settings.classifier, settings.autoencoder, device))

    def record_overhead(self, settings: RunSettings, device: str, seconds: float) -> None:
        key = (settings.classifier, settings.autoencoder, device)
        with self._lock:
            previous = self._overheads.get(key)
            self._overheads[key] = seconds if previous is None else 0.5 * (previous + seconds)

    def overhead(self, settings: RunSettings, device: str) -> float | None:
        with self._lock:
            return self._overheads.get((settings.classifier, settings.autoencoder, device))


def method_seconds(method: str, settings: RunSettings, cost: PassSeconds, num_classes: int) -> float:
    """One image's seconds for one method: its spec's pass counts times the pass costs, plus the metrics."""
    spec = method_spec(method)
    passes = spec.cost(spec.make_options(settings.options_for(method)), num_classes)
    walk = (passes.classifier_forward * cost.classifier_forward + passes.classifier_backward * cost.classifier_backward
            + (passes.decoder_forward + passes.encoder_forward) * cost.decoder_forward
            + passes.decoder_backward * cost.decoder_backward)
    return settings.runs * walk + METRIC_FORWARDS * cost.classifier_forward


def estimate(settings: RunSettings, cost: PassSeconds, num_classes: int | None = None, *,
             history: RunHistory | None = None, device: str = "cpu", workers: int = 1) -> Estimate:
    """Observed rates from earlier runs where there are any, else pass counts times the pass cost."""
    per_method = {}
    observed = 0
    for method in settings.methods:
        rate = history.rate(method, settings, device) if history is not None else None
        if rate is not None:
            per_method[method] = rate * method_steps(method, settings)
            observed += 1
        else:
            per_method[method] = method_seconds(method, settings, cost, num_classes or 1000)
    source = cost.source if not observed else ("from earlier runs" if observed == len(per_method)
                                               else f"from earlier runs and {cost.source}")
    overhead = history.overhead(settings, device) if history is not None and observed == len(per_method) else None
    return Estimate(per_method, source, workers, overhead or 0.0)


GPU_MAX_SECONDS_ENV = "MAGIG_GPU_MAX_SECONDS"
GPU_MAX_SECONDS = 120  # ZeroGPU's daily quota for visitors who are not logged in is 2 min: ask no more


def gpu_seconds(result: Estimate, *, minimum: float = 20.0, maximum: float | None = None) -> int:
    """GPU time to request from a scheduler (ZeroGPU) for a run: its estimate with headroom, capped.

    The request matters before the run starts: ZeroGPU rejects one above the visitor tier's cap ("illegal
    duration") or above the visitor's remaining quota, and queues shorter requests first, so it should be
    the smallest realistic figure. ``minimum`` covers moving the models onto the GPU when a call starts;
    ``MAGIG_GPU_MAX_SECONDS`` raises the cap for a Space whose visitors have larger quotas.
    """
    cap = maximum if maximum is not None else float(os.environ.get(GPU_MAX_SECONDS_ENV, GPU_MAX_SECONDS))
    return int(min(cap, minimum + 1.5 * result.total))


def describe(result: Estimate, settings: RunSettings, *, on_gpu: bool) -> tuple[str, str | None]:
    """A one-line estimate for the UI and, for slow CPU runs, a warning proposing cheaper settings."""
    parts = ", ".join([f"{method_spec(m).label} {_duration(s)}" for m, s in result.per_method.items()]
                      + ([f"set-up and scores {_duration(result.overhead)}"] if result.overhead else []))
    line = f"Estimated run time: **{_duration(result.total)}** ({parts}; {result.source})."
    if on_gpu or result.total <= SLOW_RUN_SECONDS:
        return line, None
    fewer = max(8, int(settings.steps * SLOW_RUN_SECONDS / result.total) // 4 * 4)
    advice = [f"lower the steps to about {fewer}"]
    fastest = fastest_autoencoder()
    if settings.needs_autoencoder and fastest is not None and settings.autoencoder != fastest.name:
        advice.append(f"choose the {fastest.name} autoencoder ({fastest.cost_hint})")
    slowest = max(result.per_method, key=result.per_method.get)
    if len(result.per_method) > 1 and result.per_method[slowest] > 0.5 * result.total:
        advice.append(f"deselect {method_spec(slowest).label} (the slowest method here)")
    warning = (f"This run will take about {_duration(result.total)} on the CPU. To get results faster, "
               + ", or ".join(advice) + ".")
    return line, warning


def describe_wait(runs_ahead: int, wait_seconds: float, own: Estimate) -> str | None:
    """The status line of a run that must wait for the device; None when it starts at once."""
    if runs_ahead <= 0 or wait_seconds < 1:
        return None
    runs = "1 run" if runs_ahead == 1 else f"{runs_ahead} runs"
    return (f"Waiting for the model device: {runs} ahead of yours, expected wait about "
            f"**{_duration(wait_seconds)}** (from their estimated run times). Yours "
            f"({_duration(own.total)}) starts by itself; Cancel leaves the queue.")


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


_MEASURED: dict[tuple, PassSeconds] = {}
_MEASURE_LOCK = ChildSafeLock()  # held while passes are timed: see magig_core.forking


def measure_pass_cost(classifier: nn.Module, autoencoder: nn.Module | None, size: tuple[int, int], *,
                      repeats: int = 2) -> PassSeconds:
    """Time one classifier and one decoder pass (forward, forward+backward) on the models' own device."""
    device = next(classifier.parameters()).device
    key = (_identity(classifier), _identity(autoencoder), str(device), tuple(size), torch.get_num_threads())
    with _MEASURE_LOCK:
        if key not in _MEASURED:
            image = torch.rand(1, 3, *size, device=device)
            cls_fwd = _best_time(lambda: _forward(classifier, image), repeats)
            cls_both = _best_time(lambda: _classifier_pass(classifier, image), repeats)
            dec_fwd = dec_both = 0.0
            if autoencoder is not None:
                with torch.no_grad():
                    latent = autoencoder.encode(image)
                dec_fwd = _best_time(lambda: _decoder_forward(autoencoder, latent), repeats)
                dec_both = _best_time(lambda: _decoder_pass(autoencoder, latent), repeats)
            _MEASURED[key] = PassSeconds(cls_fwd, max(cls_both - cls_fwd, 0.0), dec_fwd, max(dec_both - dec_fwd, 0.0),
                                      source=f"measured on {device.type}")
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


@torch.no_grad()
def _forward(classifier: nn.Module, image: torch.Tensor) -> None:
    _sync(classifier(image))


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
