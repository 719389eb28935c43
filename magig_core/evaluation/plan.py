"""What an evaluation run computes: one job per (classifier, method) with every setting that shapes its numbers.

Per-method options use one syntax everywhere: ``0.05`` applies to every method the option concerns, and
``gig=0.1,ma-gig=0.05`` sets them one by one. A job's configuration hash keys its records, so a rerun
with the same settings resumes and a changed setting starts fresh records beside the old ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
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


def parse_grid(
    text: str | None, option: str, methods: list[str], cast: Callable[[str], Any] = str
) -> dict[str, list[Any]]:
    """Values per method, several allowed: ``"v"`` or ``"v1,v2"`` → every method that shares the option;
    ``"a=v1,v2,b=v3"`` → a gets v1 and v2, b gets v3 (a bare value belongs to the last method named).

    A value without a method name never reaches a method for which the option means something else:
    ``--steps 200`` leaves IG2's 201 search steps alone and ``--interpolation slerp`` leaves EIG linear;
    name the method (``ig2=150``, ``eig=slerp``) to set it there.
    """
    flag = f"--{option.replace('_', '-')}"
    if text is None or not text.strip():
        return {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    values: dict[str, list[Any]] = {}
    try:
        if all("=" not in p for p in parts):
            concerned = [m for m in methods if _reads(m, option, shared=True)]
            return {m: [cast(p) for p in parts] for m in concerned}
        if "=" not in parts[0]:
            raise PlanError(f"{flag} {text!r}: start with method=value, e.g. gig=0.1,ma-gig=0.01,0.05")
        method = ""
        for part in parts:
            name, sep, value = part.rpartition("=")
            if sep:
                method = method_spec(name).name
                if not _reads(method, option, shared=False):
                    raise PlanError(f"{flag} does not apply to {method}")
                if method in values:
                    raise PlanError(f"{flag} names {method} twice; list its values after one {method}=")
                values[method] = []
            values[method].append(cast(value.strip()))
    except (TypeError, ValueError) as err:
        if isinstance(err, PlanError):
            raise
        raise PlanError(f"{flag} {text!r}: {err}") from err
    return values


def parse_per_method(
    text: str | None, option: str, methods: list[str], cast: Callable[[str], Any] = str
) -> dict[str, Any]:
    """One value per method, in ``parse_grid``'s syntax: ``"v"`` or ``"a=v1,b=v2"`` (for single runs)."""
    grid = parse_grid(text, option, methods, cast)
    several = sorted(m for m, v in grid.items() if len(v) > 1)
    if several:
        raise PlanError(f"--{option.replace('_', '-')} {text!r}: one value per method here ({', '.join(several)} "
                        "got several); write one value or method=value pairs, e.g. gig=0.1,ma-gig=0.05")
    return {m: v[0] for m, v in grid.items()}


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
    """One row of the table on one classifier: a method and the settings it is evaluated with.

    ``row`` names the row: the method, plus ``option=value`` for each option the grid varies for it.
    """

    classifier: str
    method: str
    explain_kwargs: dict[str, Any]
    config: dict[str, Any]  # everything that shapes the numbers (hashed)
    autoencoder: str | None = None
    row: str = ""
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.hash = config_hash(self.config)
        self.row = self.row or self.method


GRID_OPTIONS = ("autoencoder", "steps", "fraction", "interpolation")  # the order of a row name's parts


def build_jobs(
    classifiers: list[str],
    methods: list[str],
    *,
    common: dict[str, Any],
    steps: Mapping[str, Any],
    fractions: Mapping[str, Any],
    interpolations: Mapping[str, Any],
    autoencoders: Mapping[str, Any],
    repeats: dict[str, int] | None = None,
) -> list[Job]:
    """Jobs in the table's order: classifiers as given, methods in the paper's row order, then each method's
    grid (every combination of the values given for it, a value or a list of values per option). ``repeats``
    (``stability``, ``average``) go to every method's ``explain`` call; unset, a job's hash is as before."""
    ordered = sorted(methods, key=lambda method: method_spec(method).paper_order)
    given = dict(zip(GRID_OPTIONS, (autoencoders, steps, fractions, interpolations), strict=True))
    jobs = []
    for clf in classifiers:
        for method in ordered:
            axes = {option: _as_list(values[method]) for option, values in given.items() if method in values}
            varied = [option for option, values in axes.items() if len(values) > 1]
            for combination in itertools.product(*axes.values()):
                chosen = dict(zip(axes, combination, strict=True))
                autoencoder = chosen.pop("autoencoder", None)
                kwargs = {option: chosen[option] for option in GRID_OPTIONS if option in chosen}
                kwargs.update(repeats or {})
                _check_settings(method, kwargs)
                config = {"classifier": clf, "method": method, "autoencoder": autoencoder, **common, **kwargs}
                row = " ".join([method, *(f"{o}={autoencoder if o == 'autoencoder' else kwargs[o]}" for o in varied)])
                jobs.append(Job(clf, method, kwargs, config, autoencoder, row))
    return jobs


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _check_settings(method: str, kwargs: dict[str, Any]) -> None:
    """The method's own checks of its options, run before any image is touched."""
    try:
        method_spec(method).make_options(kwargs)
    except (TypeError, ValueError) as err:
        raise PlanError(str(err)) from err
