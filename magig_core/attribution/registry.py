"""The method registry: each attribution method declares, in its own module, all the product needs to know.

``explain()``, the explorer (labels, hints, estimates, the app's method list), ``evaluate`` (table order,
row names), the plots (colours) and the CLI read these specs; none of them names a method. Adding a
method is one module that calls ``register`` plus one import line in ``methods/__init__.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from magig_core.errors import ArgumentError, ArgumentTypeError

if TYPE_CHECKING:
    from magig_core.attribution.context import MethodInputs
    from magig_core.attribution.result import MethodOutput

Space = Literal["pixels", "latent", "none"]
SHARED_KEYWORDS = ("steps", "fraction", "interpolation", "schedule")  # explain() keywords several methods read


@dataclass(frozen=True)
class PassCounts:
    """Network passes one method spends on one image: what its run time is made of."""

    classifier_forward: float
    classifier_backward: float
    decoder_forward: float = 0.0
    decoder_backward: float = 0.0
    encoder_forward: float = 0.0


@dataclass(frozen=True)
class MethodSpec:
    """Everything the product knows about one method.

    ``options`` is a dataclass whose defaults are the paper's hyperparameters; its ``__post_init__``
    rejects bad values. ``shared_options`` are the options that one value given for several methods at
    once (the CLI's ``--steps 200``, the app's sliders) sets; an option outside it is only set when it
    is named for this method, so a shared value never silently changes a setting that means something
    else here (IG2's search steps, EIG's always-linear path). ``keyword_prefix`` lets ``explain()`` take
    an option as ``<prefix><field>`` (e.g. ``ig2_step_size``) next to the plain field name.
    ``uses_baseline``: whether the path starts at the baseline image (completeness is then measured
    against it) or at a point of the method's own (IG2's search end, Blur IG's blurred image).
    ``draws_references``: the method draws reference images from a bank (IG2), which front ends supply.
    """

    name: str
    label: str
    hint: str
    color: str
    paper_order: float  # row position in the paper's tables; methods outside the paper sort in between
    space: Space
    has_path: bool  # target probability along a path of several points
    has_frames: bool  # path images that can be shown
    options: type
    run: Callable[[MethodInputs, Any], MethodOutput]
    cost: Callable[[Any, int], PassCounts]  # (options, number of classes) -> passes per image
    aliases: tuple[str, ...] = ()
    shared_options: frozenset[str] = frozenset()
    keyword_prefix: str = ""
    uses_baseline: bool = True
    draws_references: bool = False  # takes reference images (``explain(references=...)``)

    @property
    def needs_autoencoder(self) -> bool:
        return self.space == "latent"

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.options))

    @property
    def default_steps(self) -> int | None:
        return getattr(self.options(), "steps", None)

    def make_options(self, values: Mapping[str, Any]) -> Any:
        """The options dataclass from keyword values: ``field`` or ``<prefix>field``; ``None`` keeps the default."""
        chosen = {}
        for field in self.option_names:
            for key in (field, f"{self.keyword_prefix}{field}" if self.keyword_prefix else None):
                if key is not None and values.get(key) is not None:
                    chosen[field] = values[key]
        try:
            return self.options(**chosen)
        except TypeError as err:
            raise ArgumentTypeError(f"{self.name}: {err}") from err
        except ValueError as err:
            raise ArgumentError(f"{self.name}: {err}") from err

    def keywords(self) -> tuple[str, ...]:
        """Every ``explain()`` keyword this method reads."""
        prefixed = tuple(f"{self.keyword_prefix}{f}" for f in self.option_names) if self.keyword_prefix else ()
        return self.option_names + prefixed


_REGISTRY: dict[str, MethodSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method; its name and aliases must be new (case, spaces and '_' are normalized)."""
    keys = [_normalize(spec.name), *(_normalize(alias) for alias in spec.aliases)]
    taken = [key for key in keys if key in _ALIASES]
    if taken:
        raise ValueError(f"method name(s) {taken} of {spec.name!r} are already registered")
    if not dataclasses.is_dataclass(spec.options):
        raise TypeError(f"{spec.name}: options must be a dataclass holding the method's defaults")
    _REGISTRY[spec.name] = spec
    for key in keys:
        _ALIASES[key] = spec.name
    return spec


def _normalize(name: str) -> str:
    return name.strip().lower().replace(" ", "-").replace("_", "-")


def method_spec(method: str) -> MethodSpec:
    """The spec of a method by name or alias (``MA-GIG``, ``ma_gig``, ``latent-gig`` …)."""
    if not isinstance(method, str):
        raise ArgumentTypeError(
            f"method must be a string, one of {', '.join(method_names())}; got {type(method).__name__}"
        )
    name = _ALIASES.get(_normalize(method))
    if name is None:
        raise ArgumentError(f"unknown method {method!r}; choose one of: {', '.join(method_names())}")
    return _REGISTRY[name]


def canonical_method(method: str) -> str:
    return method_spec(method).name


def shared_options_for(method: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Of settings given for several methods at once, those this method reads (``None`` means unset)."""
    allowed = method_spec(method).shared_options
    return {name: value for name, value in values.items() if name in allowed and value is not None}


def option_defaults(option: str, *, shared: bool = True) -> list[tuple[MethodSpec, Any]]:
    """(spec, paper default) of each method with this option that reads a shared value of it (``shared``), or
    that keeps its own (``shared=False``, e.g. IG2's search steps): help texts are built from this, not restated."""
    found = []
    for spec in all_methods():
        if (option in spec.shared_options) != shared:
            continue
        field = next((f for f in dataclasses.fields(spec.options) if f.name == option), None)
        if field is not None and field.default is not dataclasses.MISSING:
            found.append((spec, field.default))
    return found


def method_color(method: str, fallback: str = "#444444") -> str:
    """A method's colour in every plot and caption (a neutral grey for a name that is not registered)."""
    name = _ALIASES.get(_normalize(method)) if isinstance(method, str) else None
    return _REGISTRY[name].color if name is not None else fallback


def all_methods() -> list[MethodSpec]:
    """Every registered method in the paper's table order."""
    return sorted(_REGISTRY.values(), key=lambda spec: spec.paper_order)


def method_names() -> tuple[str, ...]:
    return tuple(spec.name for spec in all_methods())


def known_keywords() -> set[str]:
    """Every method-option keyword any registered method reads (for catching typos in ``explain()``)."""
    return {key for spec in _REGISTRY.values() for key in spec.keywords()} | set(SHARED_KEYWORDS)


def check_keywords(values: Mapping[str, Any]) -> None:
    """Refuse keywords no registered method reads; one meant for another method is fine (it is ignored)."""
    unknown = sorted(set(values) - known_keywords())
    if unknown:
        raise ArgumentTypeError(f"explain() got unknown keyword(s) {unknown}; see help(explain) for each "
                                "method's options")
