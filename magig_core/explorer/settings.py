"""What one explorer run is asked to do, checked before any model is touched.

A web form and a script build the same ``RunSettings``; ``validate`` turns every impossible combination
into a ``SettingsError`` that tells the user which control to change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from magig_core.attribution.api import METHODS

METHOD_LABELS: dict[str, str] = {
    "ma-gig": "MA-GIG",
    "gig": "GIG",
    "eig": "EIG",
    "mig": "MIG",
    "ig": "IG",
    "ig2": "IG2",
    "agi": "AGI",
    "gi": "GI",
}
METHOD_HINTS: dict[str, str] = {
    "ma-gig": "guided path in the autoencoder's latent space, decoded",
    "gig": "guided path in pixel space",
    "eig": "straight line in latent space, decoded",
    "mig": "latent geodesic, decoded (slow)",
    "ig": "straight line in pixel space",
    "ig2": "iterative path by gradient search (example gallery as references)",
    "agi": "adversarial ascent paths",
    "gi": "gradient × input (no path)",
}
LATENT_METHODS = frozenset({"ma-gig", "eig", "mig"})
PATHLESS_METHODS = frozenset({"gi"})
DEFAULT_METHODS = ("ma-gig", "gig")
INTERPOLATIONS = ("lerp", "slerp")
OBJECTIVES = ("prob", "logit")
PRECISIONS = ("fp32", "bf16", "fp16")
STEPS_RANGE = (4, 400)
MAX_FRAMES = 24  # path images kept per method: enough to scrub smoothly, small enough to stream


class SettingsError(ValueError):
    """An invalid combination of run settings, with a message meant for the end user."""


@dataclass(frozen=True)
class RunSettings:
    classifier: str
    autoencoder: str
    methods: tuple[str, ...] = DEFAULT_METHODS
    steps: int = 32
    fraction: float = 0.05
    interpolation: str = "lerp"
    objective: str = "prob"
    target: int | None = None  # None: the classifier's top-1 prediction
    precision: str = "fp32"
    frames: int = 16
    seed: int = 0

    def key(self) -> str:
        """A stable text key: equal settings give equal keys (used by the result cache)."""
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def num_frames(self) -> int:
        return max(2, min(self.frames, self.steps, MAX_FRAMES))


def validate(settings: RunSettings, *, on_gpu: bool, num_classes: int | None) -> RunSettings:
    """Return the settings if they are runnable, else raise ``SettingsError`` naming the control to fix."""
    if not settings.methods:
        raise SettingsError("Select at least one method to compare.")
    unknown = [m for m in settings.methods if m not in METHODS]
    if unknown:
        raise SettingsError(f"Unknown method(s) {unknown}; choose from {', '.join(METHODS)}.")
    if len(set(settings.methods)) != len(settings.methods):
        raise SettingsError("Each method can be selected only once.")
    low, high = STEPS_RANGE
    if not isinstance(settings.steps, int) or not low <= settings.steps <= high:
        raise SettingsError(f"Steps must be a whole number between {low} and {high}; got {settings.steps}.")
    if not 0 < settings.fraction <= 1:
        raise SettingsError(f"The selection fraction must lie in (0, 1]; got {settings.fraction}.")
    if settings.interpolation not in INTERPOLATIONS:
        raise SettingsError(f"Interpolation must be one of {INTERPOLATIONS}; got {settings.interpolation!r}.")
    if settings.objective not in OBJECTIVES:
        raise SettingsError(f"Objective must be one of {OBJECTIVES}; got {settings.objective!r}.")
    if settings.precision not in PRECISIONS:
        raise SettingsError(f"Precision must be one of {PRECISIONS}; got {settings.precision!r}.")
    if settings.precision != "fp32" and not on_gpu:
        raise SettingsError(
            f"{settings.precision} precision needs a GPU and none is available here. Choose fp32."
        )
    if settings.target is not None and num_classes is not None and not 0 <= settings.target < num_classes:
        raise SettingsError(
            f"Target class {settings.target} does not exist; this classifier has {num_classes} classes."
        )
    if LATENT_METHODS.intersection(settings.methods) and not settings.autoencoder:
        raise SettingsError("MA-GIG, EIG and MIG need an autoencoder. Pick one, or deselect those methods.")
    return settings
