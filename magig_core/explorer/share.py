"""Share a run: its settings (and its gallery image) as a link's query string or read back from its report.

A link or report holds every ``RunSettings`` field, so reopening it and pressing Run gives the same maps:
runs are deterministic for fixed settings. Gallery images are named by file name; an uploaded image
cannot travel in a link, so only its settings do.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np

from magig_core.explorer.examples import Example
from magig_core.explorer.form import AUTO_SIZE, TOP1, Form
from magig_core.explorer.settings import RunSettings, SettingsError
from magig_core.viz import to_uint8

if TYPE_CHECKING:
    from magig_core.explorer.service import Explorer

EXAMPLE_KEY = "example"
SPACE_PAGE = "https://huggingface.co/spaces/"
_PARSERS: dict[str, Callable[[str], Any]] = {
    "methods": lambda text: tuple(m.strip() for m in text.split(",") if m.strip()),
    "steps": int,
    "fraction": float,
    "target": int,
    "frames": int,
    "seed": int,
    "size": int,
    "average": int,
    "stability": int,
}
_FIELDS = tuple(f.name for f in fields(RunSettings))


@dataclass(frozen=True)
class SharedRun:
    """What a link or a report restores: the settings and, for a gallery image, its file name."""

    settings: RunSettings
    example: str | None = None


def to_query(settings: RunSettings, example: str | None = None) -> str:
    """``?classifier=…&methods=ma-gig,gig&…``: every set field, the example's file name when there is one."""
    values = {name: value for name, value in asdict(settings).items() if value is not None}
    values["methods"] = ",".join(settings.methods)
    if example:
        values[EXAMPLE_KEY] = example
    return "?" + urlencode(values, safe=",:")


def share_address(query: str, env: Mapping[str, str] = os.environ) -> str:
    """The link to hand out: on a Hugging Face Space its page (``SPACE_ID``), which passes the query on to the
    app; elsewhere the query alone, for the page to put behind its own address (the app's ``*.hf.space``
    frame would be the wrong one to share)."""
    space = env.get("SPACE_ID", "").strip()
    return f"{SPACE_PAGE}{space}{query}" if space else query


def from_query(params: Mapping[str, str], defaults: RunSettings) -> SharedRun | None:
    """The run a link describes (unset fields keep ``defaults``); None for a link without run settings."""
    known = {key: params[key] for key in (*_FIELDS, EXAMPLE_KEY) if key in params}
    if not known:
        return None
    changes = {}
    for name in _FIELDS:
        if name not in known:
            continue
        text = known[name]
        try:
            changes[name] = _PARSERS.get(name, str)(text) if text != "" else None
        except ValueError as err:
            raise SettingsError(f"The link's {name} value {text!r} is not valid: {err}.") from err
    return SharedRun(replace(defaults, **changes), known.get(EXAMPLE_KEY) or None)


def settings_from_report(report: Mapping[str, Any]) -> RunSettings:
    """The settings a report was written for (``report.json`` from the app's downloads)."""
    stored = report.get("settings") if isinstance(report, Mapping) else None
    if not isinstance(stored, Mapping):
        raise SettingsError("This file is not a MA-GIG Explorer report: it has no 'settings'.")
    values = {name: stored[name] for name in _FIELDS if name in stored}
    if "classifier" not in values or "autoencoder" not in values:
        raise SettingsError("The report's settings name no classifier or autoencoder.")
    values["methods"] = tuple(values.get("methods") or ())
    return RunSettings(**values)


def open_report(report: Mapping[str, Any], explorer: Explorer) -> SharedRun:
    """Settings of a report and, when its input was a gallery image, that image's file name.

    The report stores a fingerprint of the input at the working size; each gallery image is brought to that
    size the way a run does it and compared.
    """
    settings = settings_from_report(report)
    digest = report.get("input_sha256")
    if not isinstance(digest, str):
        return SharedRun(settings)
    classifier, _, _ = explorer.classifier(settings.classifier)
    for example in explorer.examples:
        image01, _ = explorer.image_tensor(example.path, classifier, settings.size)
        if input_digest(to_uint8(image01[0])) == digest:
            return SharedRun(settings, example_name(example))
    return SharedRun(settings)


def read_report(path: str | Path, explorer: Explorer) -> SharedRun:
    """``open_report`` of a report.json file; a file that is not one raises ``SettingsError`` saying so."""
    try:
        return open_report(json.loads(Path(path).read_text()), explorer)
    except (OSError, ValueError, TypeError) as err:  # SettingsError is a ValueError
        raise SettingsError(f"This file cannot be read as a report: {err}") from err


@dataclass(frozen=True)
class Restored:
    """What the page shows for a shared run: the widget values, the gallery image, and what could not be kept.

    ``pending_target``: when the shared run's classifier differs from the page's, the class chooser is reset by
    the classifier change; this target is applied once the new class list is in.
    """

    form: Form
    example: Example | None
    notes: list[str]
    pending_target: dict[str, str] | None

    def message(self, source: str) -> str:
        return (f"Settings restored from the {source}"
                + (f" with the example '{self.example.caption}'" if self.example else "")
                + ". Press Run (a result computed before shows at once)."
                + "".join(f" Note: {n}." for n in self.notes))


def restore(shared: SharedRun, explorer: Explorer, *, sizes: Sequence[str], offered_methods: Sequence[str],
            classifier_now: str, source: str) -> Restored:
    """The widget values for a shared run in an app offering these sizes and methods.

    Models the app does not offer are refused (``SettingsError``); a size it does not offer falls back to
    the classifier's own, and methods it does not offer are left out, each with a note.
    """
    settings, notes = shared.settings, []
    classifiers = [c.name for c in explorer.catalog.choices("classifier")]
    autoencoders = [c.name for c in explorer.catalog.choices("autoencoder")]
    if settings.classifier not in classifiers or settings.autoencoder not in autoencoders:
        raise SettingsError(f"The {source} names models this app does not offer: {settings.classifier}, "
                            f"{settings.autoencoder}.")
    form = Form.of(settings, explorer.class_names(settings.classifier))
    dropped = [m for m in settings.methods if m not in offered_methods]
    if dropped:
        notes.append(f"method(s) {', '.join(dropped)} are not offered here")
    if form.size not in sizes:
        notes.append(f"working resolution {settings.size} is not offered here; the classifier's own is used")
    if (settings.frames, settings.seed) != (RunSettings.frames, RunSettings.seed):
        notes.append("frames and seed cannot be set in the app; its defaults are used")
    example = find_example(explorer.examples, shared.example)
    if shared.example and example is None:
        notes.append(f"the image {shared.example!r} is not in this app's gallery")
    form = replace(form, methods=[m for m in form.methods if m in offered_methods],
                   size=form.size if form.size in sizes else AUTO_SIZE)
    pending = ({"target": form.target, "classifier": settings.classifier}
               if settings.classifier != classifier_now and form.target != TOP1 else None)
    return Restored(form, example, notes, pending)


def input_digest(image: np.ndarray) -> str:
    """Fingerprint of the input as the classifier saw it (uint8 [H,W,3] at the working size)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()


def example_name(example: Example) -> str:
    return Path(example.path).name


def find_example(examples: Sequence[Example], name: str | None) -> Example | None:
    """The gallery entry with this file name, if any."""
    return next((e for e in examples if name and example_name(e) == name), None)


def example_of_file(examples: Sequence[Example], path: str | Path | None) -> Example | None:
    """The gallery entry whose file has the same bytes (a web front end hands over a copy of it)."""
    if path is None or not Path(path).is_file():
        return None
    digest = _file_digest(Path(path))
    return next((e for e in examples if _file_digest(Path(e.path)) == digest), None)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
