"""What an evaluation run computes: one job per (classifier, method) with every setting that shapes its numbers.

Per-method options use one syntax everywhere: ``0.05`` applies to every method the option concerns, and
``gig=0.1,ma-gig=0.05`` sets them one by one. A job's configuration hash keys its records, so a rerun
with the same settings resumes and a changed setting starts fresh records beside the old ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from magig_core.attribution import validation as check
from magig_core.attribution.validation import LATENT_METHODS, METHODS, canonical_method

PAPER_ORDER = ("gi", "ig", "ig2", "agi", "eig", "mig", "gig", "ma-gig")
DISPLAY_NAMES = {"gi": "GI", "ig": "IG", "ig2": "IG2", "agi": "AGI", "eig": "EIG", "mig": "MIG", "gig": "GIG",
                 "ma-gig": "MA-GIG"}
USES = {
    "steps": {"ig", "ig2", "gig", "eig", "mig", "ma-gig"},
    "fraction": {"gig", "ma-gig"},
    "interpolation": {"eig", "ma-gig"},
    "autoencoder": set(LATENT_METHODS),
}


class PlanError(ValueError):
    """A command-line choice that cannot be evaluated; the message says what to change."""


def parse_methods(text: str) -> list[str]:
    names = [m for m in text.split(",") if m.strip()]
    if not names:
        raise PlanError(f"--methods is empty; choose from {', '.join(METHODS)}")
    try:
        methods = [canonical_method(m) for m in names]
    except ValueError as err:
        raise PlanError(str(err)) from err
    return list(dict.fromkeys(methods))


def parse_per_method(
    text: str | None, option: str, methods: list[str], cast: Callable[[str], Any] = str
) -> dict[str, Any]:
    """``"v"`` → every concerned method gets v; ``"a=v1,b=v2"`` → per method. Unconcerned methods get nothing."""
    concerned = [m for m in methods if m in USES[option]]
    if text is None or not text.strip():
        return {}
    values: dict[str, Any] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" not in p for p in parts) and len(parts) == 1:
            return {m: cast(parts[0]) for m in concerned}
        for part in parts:
            method, sep, value = part.partition("=")
            method = method.strip().lower()
            if not sep or method not in METHODS:
                raise PlanError(f"--{option.replace('_', '-')} {text!r}: write one value or method=value pairs, "
                                f"e.g. gig=0.1,ma-gig=0.05")
            if method not in USES[option]:
                raise PlanError(f"--{option.replace('_', '-')} does not apply to {method}")
            values[method] = cast(value.strip())
    except (TypeError, ValueError) as err:
        if isinstance(err, PlanError):
            raise
        raise PlanError(f"--{option.replace('_', '-')} {text!r}: {err}") from err
    return values


def require_autoencoders(methods: list[str], autoencoders: dict[str, str]) -> None:
    """Latent methods cannot run without one; say so before any data or model is loaded."""
    for method in methods:
        if method in LATENT_METHODS and method not in autoencoders:
            raise PlanError(f"{method} needs an autoencoder: pass --autoencoder NAME (e.g. mar, sd2, or "
                            f"demo-shapes) or --autoencoder {method}=NAME")


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Job:
    """One (classifier, method) pair and the settings it is evaluated with."""

    classifier: str
    method: str
    explain_kwargs: dict[str, Any]
    config: dict[str, Any]  # everything that shapes the numbers (hashed)
    autoencoder: str | None = None
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.hash = config_hash(self.config)


def build_jobs(
    classifiers: list[str],
    methods: list[str],
    *,
    common: dict[str, Any],
    steps: dict[str, int],
    fractions: dict[str, float],
    interpolations: dict[str, str],
    autoencoders: dict[str, str],
) -> list[Job]:
    """Jobs in the table's order: classifiers as given, methods in the paper's row order."""
    ordered = sorted(methods, key=PAPER_ORDER.index)
    jobs = []
    for clf in classifiers:
        for method in ordered:
            kwargs: dict[str, Any] = {}
            if method in steps:
                kwargs["steps"] = steps[method]
            if method in fractions:
                kwargs["fraction"] = fractions[method]
            if method in interpolations:
                kwargs["interpolation"] = interpolations[method]
            autoencoder = autoencoders.get(method)
            _check_settings(method, kwargs)
            config = {"classifier": clf, "method": method, "autoencoder": autoencoder, **common, **kwargs}
            jobs.append(Job(clf, method, kwargs, config, autoencoder))
    return jobs


def _check_settings(method: str, kwargs: dict[str, Any]) -> None:
    """The engine's own checks, run before any image is touched."""
    try:
        if "steps" in kwargs:
            check.check_steps(kwargs["steps"], method)
        if "fraction" in kwargs:
            check.check_fraction(kwargs["fraction"])
        if "interpolation" in kwargs:
            check.check_choice(kwargs["interpolation"], ("lerp", "slerp"), "interpolation")
    except (TypeError, ValueError) as err:
        raise PlanError(f"{method}: {err}") from err
