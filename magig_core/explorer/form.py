"""Raw values from a web form or an API call turned into ``RunSettings``, with a message for every bad one.

Widgets send well-formed values; API clients send anything: ``"nan"`` or ``7.5`` as steps, a bare string
as the method list. Nothing is coerced silently (7.5 steps is refused, not truncated to 7), and each
message names the control and an accepted value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from magig_core.attribution import method_spec
from magig_core.attribution.registry import method_names
from magig_core.errors import ArgumentError
from magig_core.explorer.settings import STEPS_RANGE, RunSettings, SettingsError

TOP1 = "top-1 prediction"
AUTO_SIZE = "classifier's own"


def parse_steps(value: Any) -> int:
    """A whole number of path points in ``STEPS_RANGE``; integral floats (8.0) and digit strings pass."""
    low, high = STEPS_RANGE
    number = _number(value)
    if number is None or not number.is_integer() or not low <= number <= high:
        raise SettingsError(f"Steps must be a whole number between {low} and {high}; got {value!r}.")
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
                       class_names: list[str]) -> RunSettings:
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
    )


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
