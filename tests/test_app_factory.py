"""app.py as a factory: nothing happens at import, one form object per run, the glue moved into the explorer."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from magig_core.attribution import method_spec
from magig_core.commands import option_help
from magig_core.explorer.estimate import Estimate
from magig_core.explorer.form import AUTO_SIZE, FORM_FIELDS, TOP1, Form, takes_form
from magig_core.explorer.service import Explorer
from magig_core.explorer.settings import RunSettings, SettingsError
from magig_core.explorer.share import SharedRun, restore

REPO = Path(__file__).resolve().parents[1]
IMPORT_PROBE = """
import json, threading, torch
built = []
init = torch.nn.Module.__init__
def counted(self, *args, **kwargs):
    built.append(type(self).__name__)
    init(self, *args, **kwargs)
torch.nn.Module.__init__ = counted
before = {t.ident for t in threading.enumerate()}
import app
from magig_core.models.model_cache import MODEL_CACHES
imported = {"modules": len(built), "threads": len({t.ident for t in threading.enumerate()} - before),
            "cached": sum(len(cache) for cache in MODEL_CACHES.values())}
demo = app.demo
created = {"modules": len(built), "blocks": type(demo).__name__, "warmer": app.WARMER is not None,
           "threads": len({t.ident for t in threading.enumerate()} - before)}
print(json.dumps({"imported": imported, "created": created}))
"""


@pytest.mark.slow
def test_importing_the_app_loads_no_model_and_starts_no_thread() -> None:
    """Catches work at import (a model loaded, the gallery warm-up thread started, the UI built): the same probe
    then sees the models appear when ``app.demo`` is first read, so a probe that counts nothing fails too.

    The warm-up is asked for (``MAGIG_WARM_EXAMPLES=eager``) and must still wait for ``launch()``.
    """
    env = os.environ | {"MAGIG_WARM_EXAMPLES": "eager", "MAGIG_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["imported"] == {"modules": 0, "threads": 0, "cached": 0}
    assert seen["created"]["modules"] > 0 and seen["created"]["blocks"] == "Blocks"
    assert not seen["created"]["warmer"] and seen["created"]["threads"] == 0


def test_a_handler_taking_a_form_keeps_one_named_api_parameter_per_control() -> None:
    """Catches a wrapper that hides the controls behind ``*args`` (Gradio's API would lose their names) or
    builds the form from the wrong positions."""

    @takes_form(without=("target",))
    def handler(image: str, form: Form, style: str, request: object = None) -> tuple:
        return image, form, style, request

    names = list(inspect.signature(handler).parameters)
    assert names == ["image", *[f for f in FORM_FIELDS if f != "target"], "style", "request"]
    values = {name: f"<{name}>" for name in FORM_FIELDS if name != "target"}
    image, form, style, request = handler("img", *values.values(), "heat", request="r")
    assert (image, style, request) == ("img", "heat", "r")
    assert form == Form(**values, target=TOP1)


def test_a_generator_handler_stays_a_generator() -> None:
    """Catches a wrapper that returns the generator object from a plain function: Gradio would not stream."""

    @takes_form()
    def handler(form: Form):
        yield form.steps
        yield form.methods

    assert inspect.isgeneratorfunction(handler)
    assert list(handler(*[1 if n == "steps" else [n] for n in FORM_FIELDS])) == [1, ["methods"]]


def test_form_of_settings_reads_back_the_same_settings() -> None:
    """``Form.of`` (the widgets a shared run restores) inverts ``Form.settings``: catches a field restored to
    the wrong control, a lost target or a size shown in a form the parser does not read back."""
    names = ["cat", "dog", "ship"]
    for settings in (RunSettings("c", "a"), RunSettings("c", "a", ("gig", "ig"), 48, 0.2, "slerp", "logit", 2,
                                                        "fp32", size=96)):
        assert Form.of(settings, names).settings(names) == settings


def fake_explorer(class_names: list[str]) -> SimpleNamespace:
    choices = {"classifier": [SimpleNamespace(name="c1"), SimpleNamespace(name="c2")],
               "autoencoder": [SimpleNamespace(name="a1")]}
    example = SimpleNamespace(path="/gallery/cat.png", caption="a cat")
    return SimpleNamespace(catalog=SimpleNamespace(choices=choices.__getitem__), class_names=lambda _: class_names,
                           examples=[example])


def test_restoring_a_shared_run_keeps_what_the_app_offers_and_says_what_it_drops() -> None:
    """Catches a restore that keeps an unoffered size or method, loses the non-top-1 target when the classifier
    changes (it must wait for the new class list), or accepts models the app does not offer."""
    explorer = fake_explorer(["cat", "dog", "ship"])
    settings = RunSettings("c2", "a1", ("ma-gig", "agi", "gig"), 48, 0.2, target=2, size=40)
    restored = restore(SharedRun(settings, "cat.png"), explorer, sizes=(AUTO_SIZE, "64"),
                       offered_methods=("ma-gig", "gig"), classifier_now="c1", source="link")
    assert restored.form == Form("c2", "a1", ["ma-gig", "gig"], 48, 0.2, "lerp", "prob", "2: ship", "fp32", AUTO_SIZE)
    assert restored.example is explorer.examples[0]
    assert restored.pending_target == {"target": "2: ship", "classifier": "c2"}
    assert any("agi" in note for note in restored.notes) and any("40" in note for note in restored.notes)
    same = restore(SharedRun(settings), explorer, sizes=(AUTO_SIZE,), offered_methods=("gig",), classifier_now="c2",
                   source="link")
    assert same.pending_target is None and same.example is None
    with pytest.raises(SettingsError, match="does not offer"):
        restore(SharedRun(RunSettings("vgg16", "a1")), explorer, sizes=(AUTO_SIZE,), offered_methods=("gig",),
                classifier_now="c1", source="report")


def test_the_wait_line_counts_only_the_visitors_ahead() -> None:
    """Queue arithmetic in the explorer: catches counting the visitor's own queued run, or those behind it.

    Two visitors ahead planned 30 s and 50 s on one free slot: the wait is their sum, 80 s (closed form).
    """
    explorer = Explorer(torch.device("cpu"), run_slots=1)  # no model is loaded until a run asks for one
    explorer.plan("a", 30.0)
    explorer.plan("b", 50.0)
    explorer.plan("later", 500.0)
    line = explorer.wait_line("me", ["a", "b", "me", "later"], Estimate({"gig": 10.0}, "test"))
    assert "2 runs ahead" in line and "about **80 s**" in line
    assert explorer.wait_line("a", ["a", "b", "me"], Estimate({"gig": 30.0}, "test")) is None


def test_help_texts_are_built_from_the_methods_defaults(monkeypatch) -> None:
    """Catches help texts that restate defaults ("gig=0.1,ma-gig=0.05", "IG2 keeps its 201"): a changed
    default must change the text."""
    gig, ma_gig, ig2 = method_spec("gig"), method_spec("ma-gig"), method_spec("ig2")
    assert f"gig={gig.options().fraction},ma-gig={ma_gig.options().fraction}" in option_help.fraction_help()
    assert f"IG2 keeps its {ig2.options().steps}" in option_help.steps_help()
    changed = {("fraction", True): [(gig, 0.3)], ("steps", False): [(ig2, 99)], ("steps", True): [(gig, 50)]}
    monkeypatch.setattr(option_help, "option_defaults", lambda option, shared=True: changed[(option, shared)])
    assert "gig=0.3" in option_help.fraction_help() and "IG2 keeps its 99" in option_help.steps_help()
