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

from magig_core.attribution.registry import method_names, method_spec
from magig_core.errors import ArgumentError


class PlanError(ArgumentError):
    """A command-line choice that cannot be evaluated; the message says what to change."""


def parse_methods(text: str) -> list[str]:
    """Comma-separated names or aliases; ``all`` means every registered method."""
    if text.strip().lower() == "all":
        return list(method_names())
    names = [m for m in text.split(",") if m.strip()]
    if not names:
        raise PlanError(f"--methods is empty; choose from {', '.join(method_names())}")
    try:
        methods = [method_spec(m).name for m in names]
    except ValueError as err:
        raise PlanError(str(err)) from err
    return list(dict.fromkeys(methods))


def _reads(method: str, option: str, *, shared: bool) -> bool:
    """Whether a value for ``option`` reaches ``method``: an unqualified one only if the method shares it."""
    spec = method_spec(method)
    if option == "autoencoder":
        return spec.needs_autoencoder
    return option in (spec.shared_options if shared else spec.option_names)


def parse_per_method(
    text: str | None, option: str, methods: list[str], cast: Callable[[str], Any] = str
) -> dict[str, Any]:
    """``"v"`` → every method that shares the option gets v; ``"a=v1,b=v2"`` → per method.

    A single value never reaches a method for which the option means something else: ``--steps 200``
    leaves IG2's 201 search steps alone and ``--interpolation slerp`` leaves EIG linear; name the method
    (``ig2=150``, ``eig=slerp``) to set it there.
    """
    concerned = [m for m in methods if _reads(m, option, shared=True)]
    if text is None or not text.strip():
        return {}
    values: dict[str, Any] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" not in p for p in parts) and len(parts) == 1:
            return {m: cast(parts[0]) for m in concerned}
        for part in parts:
            name, sep, value = part.partition("=")
            if not sep:
                raise PlanError(f"--{option.replace('_', '-')} {text!r}: write one value or method=value pairs, "
                                f"e.g. gig=0.1,ma-gig=0.05")
            method = method_spec(name).name
            if not _reads(method, option, shared=False):
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
        if method_spec(method).needs_autoencoder and method not in autoencoders:
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
    repeats: dict[str, int] | None = None,
) -> list[Job]:
    """Jobs in the table's order: classifiers as given, methods in the paper's row order. ``repeats``
    (``stability``, ``average``) go to every method's ``explain`` call; unset, a job's hash is as before."""
    ordered = sorted(methods, key=lambda method: method_spec(method).paper_order)
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
            kwargs.update(repeats or {})
            autoencoder = autoencoders.get(method)
            _check_settings(method, kwargs)
            config = {"classifier": clf, "method": method, "autoencoder": autoencoder, **common, **kwargs}
            jobs.append(Job(clf, method, kwargs, config, autoencoder))
    return jobs


def _check_settings(method: str, kwargs: dict[str, Any]) -> None:
    """The method's own checks of its options, run before any image is touched."""
    try:
        method_spec(method).make_options(kwargs)
    except (TypeError, ValueError) as err:
        raise PlanError(str(err)) from err
