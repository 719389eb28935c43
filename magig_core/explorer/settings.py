"""What one explorer run is asked to do, checked before any model is touched.

A web form and a script build the same ``RunSettings``; ``validate`` turns every impossible combination
into a ``SettingsError`` that tells the user which control to change. Which method a shared setting
(steps, fraction, interpolation) reaches is the method's own declaration in the registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from magig_core.attribution import all_methods, method_spec
from magig_core.attribution.context import OBJECTIVES, PRECISIONS
from magig_core.attribution.guided import INTERPOLATIONS
from magig_core.attribution.registry import shared_options_for
from magig_core.errors import ArgumentError

DEFAULT_METHODS = ("ma-gig", "gig")  # the comparison the app opens with
STEPS_RANGE = (4, 400)
PAPER_STEPS = 200  # the paper's path points: the default, so a map is the method as published
QUICK_STEPS = 32  # the quick look, one click away and labelled with what the stability study measured for it
MAX_RUNS = 8  # perturbed runs per method (stability, average): each costs one more walk
# MA-GIG on the bundled pair (benchmarks/results/stability_study.md): top-10 % overlap (IoU) of a run with the
# run one path point shorter, and DiffID top-1, at the quick look and at the paper's setting.
QUICK_LOOK_MEASURED = {QUICK_STEPS: (0.12, 0.06), PAPER_STEPS: (0.16, 0.12)}
_QUICK, _PAPER = QUICK_LOOK_MEASURED[QUICK_STEPS], QUICK_LOOK_MEASURED[PAPER_STEPS]
QUICK_LOOK = (f"not the paper's setting; MA-GIG's overlap with a run one point shorter {_QUICK[0]:.2f} "
              f"(at {PAPER_STEPS}: {_PAPER[0]:.2f}), DiffID {_QUICK[1]:+.2f} ({_PAPER[1]:+.2f})")
SIZE_RANGE = (16, 512)  # working resolutions; multiples of 8, as the autoencoders' down-sampling needs
MAX_FRAMES = 24  # path images kept per method: enough to scrub smoothly, small enough to stream


class SettingsError(ArgumentError):
    """An invalid combination of run settings, with a message meant for the end user."""


@dataclass(frozen=True)
class RunSettings:
    classifier: str
    autoencoder: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    steps: int = PAPER_STEPS
    fraction: float | None = None  # None: each guided method keeps its paper value
    interpolation: str = "lerp"
    objective: str = "prob"
    target: int | None = None  # None: the classifier's top-1 prediction
    precision: str = "fp32"
    frames: int = 16
    seed: int = 0
    size: int | None = None  # working resolution (square side); None: the classifier's input size
    average: int = 1  # each map is the mean of this many perturbed runs (explain(average=...))
    stability: int = 0  # 0, or K >= 2 perturbed runs compared for the stability column and agreement map

    def key(self) -> str:
        """A stable text key: equal settings give equal keys (used by the result cache)."""
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def num_frames(self) -> int:
        return max(2, min(self.frames, self.steps, MAX_FRAMES))

    @property
    def needs_autoencoder(self) -> bool:
        return any(method_spec(m).needs_autoencoder for m in self.methods)

    @property
    def runs(self) -> int:
        """Walks per method: the stability comparison's groups times the averaged runs."""
        return max(1, self.stability) * self.average

    def options_for(self, method: str) -> dict[str, Any]:
        """The shared settings this method reads (its spec's ``shared_options``), as ``explain`` keywords."""
        shared = {"steps": self.steps, "fraction": self.fraction, "interpolation": self.interpolation}
        return shared_options_for(method, shared)

    def repeats(self) -> dict[str, int]:
        """``explain`` keywords for the perturbed runs (empty for a plain run)."""
        return {"stability": self.stability, "average": self.average} if self.runs > 1 else {}


def methods_reading(option: str) -> list[str]:
    """Labels of the methods a shared setting reaches, for the controls' captions."""
    return [spec.label for spec in all_methods() if option in spec.shared_options]


def validate(settings: RunSettings, *, on_gpu: bool, num_classes: int | None) -> RunSettings:
    """Return the settings if they are runnable, else raise ``SettingsError`` naming the control to fix."""
    if not settings.methods:
        raise SettingsError("Select at least one method to compare.")
    try:
        canonical = [method_spec(m).name for m in settings.methods]
    except ArgumentError as err:
        raise SettingsError(f"Unknown method(s) in {list(settings.methods)}: {err}.") from err
    if len(set(canonical)) != len(canonical):
        raise SettingsError("Each method can be selected only once.")
    low, high = STEPS_RANGE
    if isinstance(settings.steps, bool) or not isinstance(settings.steps, int) or not low <= settings.steps <= high:
        raise SettingsError(f"Steps must be a whole number between {low} and {high}; got {settings.steps}.")
    average_ok = isinstance(settings.average, int) and 1 <= settings.average <= MAX_RUNS
    stability_ok = isinstance(settings.stability, int) and (settings.stability == 0
                                                            or 2 <= settings.stability <= MAX_RUNS)
    if not (average_ok and stability_ok):
        raise SettingsError(f"Average takes 1 to {MAX_RUNS} runs and stability 0 (off) or 2 to {MAX_RUNS}; got "
                            f"{settings.average} and {settings.stability}.")
    if settings.runs > settings.steps - 1:
        raise SettingsError(f"{settings.runs} perturbed runs use {settings.steps}, {settings.steps - 1}, … path "
                            f"points: raise the steps above {settings.runs} or ask for fewer runs.")
    low_size, high_size = SIZE_RANGE
    if settings.size is not None and not (
            isinstance(settings.size, int) and low_size <= settings.size <= high_size and settings.size % 8 == 0):
        raise SettingsError(f"The working resolution must be a multiple of 8 between {SIZE_RANGE[0]} and "
                            f"{SIZE_RANGE[1]} pixels; got {settings.size}.")
    if settings.fraction is not None and not 0 < settings.fraction <= 1:
        raise SettingsError(f"The selection fraction must lie in (0, 1]; got {settings.fraction}.")
    if settings.interpolation not in INTERPOLATIONS:
        raise SettingsError(f"Interpolation must be one of {INTERPOLATIONS}; got {settings.interpolation!r}.")
    if settings.objective not in OBJECTIVES:
        raise SettingsError(f"Objective must be one of {OBJECTIVES}; got {settings.objective!r}.")
    if settings.precision not in PRECISIONS:
        raise SettingsError(f"Precision must be one of {tuple(PRECISIONS)}; got {settings.precision!r}.")
    if settings.precision != "fp32" and not on_gpu:
        raise SettingsError(
            f"{settings.precision} precision needs a GPU and none is available here. Choose fp32."
        )
    if settings.target is not None and num_classes is not None and not 0 <= settings.target < num_classes:
        raise SettingsError(
            f"Target class {settings.target} does not exist; this classifier has {num_classes} classes."
        )
    if settings.needs_autoencoder and not settings.autoencoder:
        latent = ", ".join(spec.label for spec in all_methods() if spec.needs_autoencoder)
        raise SettingsError(f"{latent} need an autoencoder. Pick one, or deselect those methods.")
    return replace(settings, methods=tuple(canonical))
