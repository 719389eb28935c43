"""Raw values from a web form or an API call turned into ``RunSettings``, with a message for every bad one.

Widgets send well-formed values; API clients send anything: ``"nan"`` or ``7.5`` as steps, a bare string
as the method list. Nothing is coerced silently (7.5 steps is refused, not truncated to 7), and each
message names the control and an accepted value. ``Form`` is the one list of the run's controls: the app
builds its inputs and its restored widget values from it, and ``takes_form`` hands a handler one ``Form``
while its API keeps one named parameter per control.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from magig_core.attribution import method_spec
from magig_core.attribution.registry import method_names
from magig_core.errors import ArgumentError
from magig_core.explorer.settings import MAX_RUNS, STEPS_RANGE, RunSettings, SettingsError

TOP1 = "top-1 prediction"
AUTO_SIZE = "classifier's own"


def parse_steps(value: Any) -> int:
    """A whole number of path points in ``STEPS_RANGE``; integral floats (8.0) and digit strings pass."""
    low, high = STEPS_RANGE
    number = _number(value)
    if number is None or not number.is_integer() or not low <= number <= high:
        raise SettingsError(f"Steps must be a whole number between {low} and {high}; got {value!r}.")
    return int(number)


def parse_runs(value: Any, name: str, *, off: int) -> int:
    """A whole number of perturbed runs, ``off`` (a plain run) up to ``MAX_RUNS``; empty means ``off``."""
    if value is None or value == "":
        return off
    number = _number(value)
    if number is None or not number.is_integer() or not off <= number <= MAX_RUNS:
        raise SettingsError(f"{name} must be a whole number between {off} and {MAX_RUNS}; got {value!r}.")
    return int(number)


def parse_fraction(value: Any) -> float | None:
    """The guided selection fraction in (0, 1]; 0 or empty means each method's paper value (None)."""
    if value is None or value == "":
        return None
    number = _number(value)
    if number is None or not 0 <= number <= 1:
        raise SettingsError("The selection fraction must be a number in (0, 1], or 0 to keep each method's "
                            f"paper value; got {value!r}.")
    return number or None


def parse_methods(value: Any) -> tuple[str, ...]:
    """A list of method names; a single name (or names separated by commas) is accepted as a string too."""
    if isinstance(value, str):
        names = tuple(name.strip() for name in value.split(",") if name.strip())
    elif value is None:
        names = ()
    elif isinstance(value, Sequence) and all(isinstance(name, str) for name in value):
        names = tuple(value)
    else:
        raise SettingsError(f'methods must be a list of names, e.g. ["gig"]; got {value!r}.')
    unknown = [name for name in names if not _is_method(name)]
    if unknown:
        raise SettingsError(f"Unknown method(s) {unknown}: choose from {', '.join(method_names())}.")
    return names


def parse_size(value: Any) -> int | None:
    """The working resolution: the classifier's own (None) or a side length in pixels."""
    if value in (None, "", AUTO_SIZE):
        return None
    number = _number(value)
    if number is None or not number.is_integer():
        raise SettingsError(f"The working resolution must be {AUTO_SIZE!r} or a side length in pixels such as "
                            f"128; got {value!r}.")
    return int(number)


def parse_target(value: str | int | None, class_names: list[str]) -> int | None:
    """A target chooser's value: empty/"top-1" → None, "12", "12: name" or a class name → its index."""
    if value is None or (isinstance(value, str) and (not value.strip() or value.startswith("top-1"))):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise SettingsError(f"The target class must be a class name or index, or {TOP1!r}; got {value!r}.")
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


def settings_from_form(*, classifier: str, autoencoder: str, methods: Any, steps: Any, fraction: Any,
                       interpolation: str, objective: str, target: Any, precision: str | None, size: Any,
                       average: Any = 1, stability: Any = 0, class_names: list[str]) -> RunSettings:
    """Every control's raw value → ``RunSettings`` (``settings.validate`` then checks the combination)."""
    return RunSettings(
        classifier=classifier,
        autoencoder=autoencoder,
        methods=parse_methods(methods),
        steps=parse_steps(steps),
        fraction=parse_fraction(fraction),
        interpolation=interpolation,
        objective=objective,
        target=parse_target(target, class_names),
        precision=precision or "fp32",
        size=parse_size(size),
        average=parse_runs(average, "Average", off=1),
        stability=parse_runs(stability, "Stability runs", off=0),
    )


@dataclass(frozen=True)
class Form:
    """The run's controls as a page or an API client sends them (unchecked: ``settings`` checks them)."""

    classifier: str
    autoencoder: str
    methods: Any
    steps: Any
    fraction: Any
    interpolation: str
    objective: str
    target: Any = TOP1
    precision: str | None = "fp32"
    size: Any = AUTO_SIZE
    average: Any = 1  # runs averaged into each map
    stability: Any = 0  # perturbed runs compared (0: off)

    def settings(self, class_names: list[str]) -> RunSettings:
        return settings_from_form(**{name: getattr(self, name) for name in FORM_FIELDS}, class_names=class_names)

    @classmethod
    def of(cls, settings: RunSettings, class_names: list[str]) -> Form:
        """The widget values that show these settings (the inverse of ``settings``)."""
        return cls(classifier=settings.classifier, autoencoder=settings.autoencoder, methods=list(settings.methods),
                   steps=settings.steps, fraction=settings.fraction or 0.0, interpolation=settings.interpolation,
                   objective=settings.objective, target=target_label(settings.target, class_names),
                   precision=settings.precision, size=AUTO_SIZE if settings.size is None else str(settings.size),
                   average=settings.average, stability=settings.stability)


FORM_FIELDS = tuple(f.name for f in fields(Form))


def target_choices(class_names: list[str]) -> list[str]:
    """The class chooser's entries: top-1, then "index: name" for every class."""
    return [TOP1] + [f"{i}: {name}" for i, name in enumerate(class_names)]


def target_label(target: int | None, class_names: list[str]) -> str:
    if target is None:
        return TOP1
    return f"{target}: " + (class_names[target] if 0 <= target < len(class_names) else "unknown class")


def takes_form(*, without: Sequence[str] = ()) -> Callable[[Callable], Callable]:
    """Let a handler take a parameter ``form: Form`` while its callers pass one named value per control.

    The wrapper's signature lists ``FORM_FIELDS`` (less ``without``, which keep ``Form``'s defaults) where the
    handler has ``form``, so a web framework that reads signatures (Gradio's named API) sees every control by
    name, in one order declared once.
    """

    def decorate(handler: Callable) -> Callable:
        own = inspect.signature(handler)
        names = list(own.parameters)
        at = names.index("form")
        controls = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Any)
                    for name in FORM_FIELDS if name not in without]
        params = list(own.parameters.values())
        signature = own.replace(parameters=[*params[:at], *controls, *params[at + 1:]])

        @functools.wraps(handler)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            form = Form(**{c.name: values.pop(c.name) for c in controls})
            return handler(**values, form=form)

        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()
                                   if p.annotation is not inspect.Parameter.empty}
        if inspect.isgeneratorfunction(handler):
            @functools.wraps(wrapper)
            def streaming(*args, **kwargs):
                yield from wrapper(*args, **kwargs)
            return streaming
        return wrapper

    return decorate


def _is_method(name: str) -> bool:
    try:
        method_spec(name)
    except ArgumentError:
        return False
    return True


def _number(value: Any) -> float | None:
    """A finite float from a number or numeric string; None for anything else (bools, NaN, text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)
