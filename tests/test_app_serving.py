"""Serving many visitors from one explorer: device slots, decode-once uploads, form checks, messages, metrics.

No web server here (tests/test_app.py drives the real app); each test names the mistake it catches.
"""

from __future__ import annotations

import re
import shutil
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from magig_core.attribution import all_methods, method_spec
from magig_core.attribution.api import explain
from magig_core.demo.example_scenes import load_examples
from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.form import parse_fraction, parse_methods, parse_size, parse_steps
from magig_core.explorer.gradio_queue import waiting_sessions, watch_current_event
from magig_core.explorer.image_cache import DecodedImages
from magig_core.explorer.messages import user_message
from magig_core.explorer.service import Explorer
from magig_core.explorer.settings import RunSettings, SettingsError
from magig_core.explorer.slots import POLL_SECONDS, RunSlots
from magig_core.metrics import faithfulness
from tests.conftest import IdentityAutoencoder, small_cnn

# Device slots ------------------------------------------------------------------------------------

def test_a_second_run_waits_for_the_slot_and_leaves_when_no_longer_wanted():
    """Catches unbounded runs on one device, and waiters that stay queued after their visitor left."""
    slots = RunSlots(1)
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with slots.hold(10.0):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(5)
    start = time.monotonic()
    with pytest.raises(RunCancelled, match="waiting"), slots.hold(1.0, lambda: True):
        pass
    idle = time.monotonic() - start  # the same wait when the visitor has left already: the first poll ends it
    gone = threading.Event()
    threading.Timer(0.2, gone.set).start()
    start = time.monotonic()
    with pytest.raises(RunCancelled, match="waiting"), slots.hold(1.0, gone.is_set):
        pass
    waited = time.monotonic() - start
    assert 0.15 < waited < 0.2 + POLL_SECONDS + 20 * idle + 0.5  # it waited, then left at the next poll
    release.set()
    thread.join(5)
    with slots.hold(1.0):  # the slot is free again
        assert slots.busy == 1
    assert slots.busy == 0


def test_expected_wait_adds_the_runs_ahead_to_the_time_the_holders_still_need():
    """Catches a wait that ignores queued runs or the number of slots."""
    one = RunSlots(1)
    assert one.expected_wait([5.0]) == 5.0  # free device: only the queued run
    busy = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with one.hold(10.0):
            busy.set()
            done.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    busy.wait(5)
    assert one.expected_wait([]) == pytest.approx(10.0, abs=0.5)
    assert one.expected_wait([5.0, 7.0]) == pytest.approx(22.0, abs=0.5)
    done.set()
    thread.join(5)
    two = RunSlots(2)
    assert two.expected_wait([5.0]) == 0.0 and two.expected_wait([5.0, 7.0, 1.0]) == 6.0


def test_outside_a_gradio_event_nothing_reports_a_departed_client():
    """Catches a watcher that stops scripts and tests that call the explorer outside a web server."""
    assert watch_current_event()() is False and waiting_sessions("runs") == []


# Decoding once -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def explorer() -> Explorer:
    return Explorer(torch.device("cpu"))


@pytest.fixture(scope="module")
def scenes() -> list[str]:
    """The demo scenes, made for the demo-shapes models (disc first)."""
    return [e["path"] for e in load_examples()]


def test_an_upload_is_decoded_once_for_preview_lookup_run_and_replay(explorer, scenes, tmp_path):
    """Catches the three to five decodes one visit used to cost (preview, cache lookup, run, remember)."""
    path = tmp_path / "upload.png"
    shutil.copy(scenes[0], path)
    settings = RunSettings("demo-shapes", "demo-shapes", methods=("gi",), steps=4)
    before = explorer.images.decodes
    explorer.predict(str(path), "demo-shapes")
    assert explorer.cached(str(path), settings) is None
    states = list(explorer.run(str(path), settings))
    explorer.remember(str(path), states[-1])
    assert explorer.cached(str(path), settings).from_cache
    assert explorer.images.decodes == before + 1
    path.write_bytes(path.read_bytes())  # a rewritten file (new mtime) is a new version
    explorer.predict(str(path), "demo-shapes")
    assert explorer.images.decodes == before + 2


def test_decoded_images_keep_only_working_size_tensors_within_their_byte_budget(scenes):
    """Catches an image cache that grows without bound (one entry per upload, forever)."""
    images = DecodedImages(max_bytes=2 * 3 * 32 * 32 * 4)  # room for two 32×32 float tensors
    paths = scenes[:3]
    for path in paths:
        tensor, _ = images.tensor(path, (32, 32))
        assert tensor.shape == (1, 3, 32, 32)
    assert images.nbytes == 2 * 3 * 32 * 32 * 4 and images.decodes == 3
    images.tensor(paths[0], (32, 32))  # the oldest was evicted: decoded again
    images.tensor(paths[2], (32, 32))  # still held
    assert images.decodes == 4


# Form values and messages ------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [(12, 12), (12.0, 12), ("12", 12), (" 400 ", 400)])
def test_whole_step_counts_pass(value, expected):
    assert parse_steps(value) == expected


@pytest.mark.parametrize("value", ["nan", float("nan"), 7.5, "7.5", 1000, 2, True, None, "many", [8]])
def test_steps_that_are_not_a_whole_number_in_range_are_refused_not_truncated(value):
    """Catches "nan" reaching int() (a generic server error) and 7.5 silently running 7 steps."""
    with pytest.raises(SettingsError, match=r"Steps must be a whole number between 4 and 400; got "):
        parse_steps(value)


def test_methods_accept_a_list_or_a_single_name_and_say_what_else_is_wrong():
    """Catches "gig" being split into letters ("Value 'g' is not in the list of choices")."""
    assert parse_methods("gig") == ("gig",) and parse_methods(["ma-gig", "gig"]) == ("ma-gig", "gig")
    assert parse_methods("ma-gig, ig") == ("ma-gig", "ig")
    with pytest.raises(SettingsError, match=r'methods must be a list of names, e\.g\. \["gig"\]'):
        parse_methods(5)
    with pytest.raises(SettingsError, match=r"Unknown method\(s\) \['magic'\]: choose from gi, ig"):
        parse_methods(["magic"])


def test_fraction_and_size_values():
    assert parse_fraction(0) is None and parse_fraction(0.25) == 0.25 and parse_fraction("") is None
    assert parse_size("classifier's own") is None and parse_size("128") == 128
    for bad in (-0.1, 1.5, "nan"):
        with pytest.raises(SettingsError, match=r"selection fraction must be a number in \(0, 1\]"):
            parse_fraction(bad)
    with pytest.raises(SettingsError, match="working resolution"):
        parse_size("big")


@pytest.mark.parametrize(
    ("error", "title", "message"),
    [
        (SettingsError("Steps must be a whole number."), "Error", "^Steps must be a whole number.$"),
        (RunCancelled("Cancelled during GIG."), "Cancelled", "Press Run to start again"),
        (ValueError("fraction too small for MA-GIG"), "Error", "cannot be run: fraction too small.*Change them"),
        (KeyError("layer4"), "Unexpected error", r"Something went wrong on the server \(KeyError: 'layer4'\)\. "
                                                 "Try again"),
        (MemoryError(), "Out of memory", "smaller image"),
    ],
)
def test_every_failure_becomes_a_message_that_says_what_to_do(error, title, message):
    """Catches unexpected exceptions reaching the visitor as a framework's generic text (or none)."""
    got = user_message(error)
    assert got.title == title and got.unexpected == (title in ("Unexpected error", "Out of memory"))
    assert re.search(message, got.text)


def test_an_unexpected_error_message_is_short():
    assert len(user_message(RuntimeError("x" * 5000)).text) < 400


# Metrics for any target class --------------------------------------------------------------------

def test_metrics_for_a_class_other_than_the_prediction_are_target_probabilities_not_saturated(explorer, scenes):
    """Catches the clamped ratio p(perturbed)/p(input): for an unlikely class it was 1 and 1 for every method."""
    path = scenes[0]  # a disc, predicted with p ≈ 1
    settings = RunSettings("demo-shapes", "demo-shapes", methods=("gi", "ig", "gig", "eig"), steps=12, target=3)
    state = list(explorer.run(path, settings))[-1]
    assert state.context.target == 3 and state.context.target_probability < 1e-3
    classifier, _, _ = explorer.classifier("demo-shapes")
    image01, _ = explorer.image_tensor(path, classifier)
    triples = []
    for result in state.results:
        scores = faithfulness(classifier, image01, torch.from_numpy(result.attributions)[None], [3])
        assert float(scores.insertion_soft.mean()) == 1.0 == float(scores.deletion_soft.mean())  # saturated
        metrics = result.scores
        assert metrics["insertion_prob"] == pytest.approx(float(scores.insertion_prob.double().mean()), rel=1e-9)
        assert metrics["deletion_prob"] == pytest.approx(float(scores.deletion_prob.double().mean()), rel=1e-9)
        assert metrics["diffid_prob"] == pytest.approx(metrics["insertion_prob"] - metrics["deletion_prob"], abs=1e-12)
        assert 0 < metrics["deletion_prob"] < 1 and 0 < metrics["insertion_prob"] < 1
        triples.append((metrics["diffid_prob"], metrics["insertion_prob"], metrics["deletion_prob"]))
    assert len(set(triples)) == len(triples)  # every method gets its own numbers


# Shared models -----------------------------------------------------------------------------------

def test_ig2_is_not_disturbed_by_another_thread_using_the_same_classifier():
    """Catches IG2's representation hook recording other visitors' forward passes (a prediction meanwhile)."""
    classifier = small_cnn(num_classes=4)
    generator = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, 16, 16, generator=generator)
    references = torch.rand(6, 3, 16, 16, generator=generator)

    def run() -> torch.Tensor:
        return explain(image, classifier, "ig2", references=references, steps=60).attributions

    alone = run()
    others = torch.rand(2, 3, 16, 16, generator=generator)
    stop = threading.Event()

    def predict_meanwhile() -> None:
        with torch.no_grad():
            while not stop.is_set():
                classifier(others)

    thread = threading.Thread(target=predict_meanwhile)
    thread.start()
    try:
        together = [run() for _ in range(3)]
    finally:
        stop.set()
        thread.join(5)
    for attributions in together:
        np.testing.assert_array_equal(attributions.numpy(), alone.numpy())


# Cancellation reaches every method -----------------------------------------------------------------

class CountingClassifier(nn.Module):
    """Counts forward passes; ``fc`` is the final linear block IG2 reads."""

    def __init__(self, passes: list[int]) -> None:
        super().__init__()
        self.net, self.passes = small_cnn(num_classes=12), passes
        self.fc = self.net[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.passes[0] += 1
        return self.net(images)


class CountingAutoencoder(IdentityAutoencoder):
    def __init__(self, passes: list[int]) -> None:
        self.passes = passes

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self.passes[0] += 1
        return latents


@pytest.mark.parametrize("method", [spec.name for spec in all_methods()])
def test_every_method_polls_its_callback_within_a_few_network_passes(method):
    """Catches a method whose stop check waits for a whole sweep (MIG's energy descent) or a whole batch of
    adversarial walks (AGI): with real models on a CPU that is minutes of an abandoned run."""
    passes, gaps = [0], []
    last = [0]

    def callback(done: int, total: int) -> None:
        gaps.append(passes[0] - last[0])
        last[0] = passes[0]

    spec = method_spec(method)
    options = {"steps": 20} if "steps" in spec.shared_options else {}
    if method == "ig2":
        options["references"] = torch.rand(4, 3, 16, 16)
    if method == "mig":
        options["mig_energy_threshold"] = 0.0  # always descend: two full sweeps
    if method == "agi":
        options["agi_epsilon"] = 1e-4  # tiny steps: no walk reaches its adversary early, all 15 iterations run
    explain(torch.rand(1, 3, 16, 16), CountingClassifier(passes), method,
            autoencoder=CountingAutoencoder(passes) if spec.needs_autoencoder else None, callback=callback,
            **options)
    assert max([*gaps, passes[0] - last[0]]) <= 4, gaps  # passes between polls, and after the last one


def test_a_finished_run_carries_the_seconds_it_spent_beyond_its_walks_and_teaches_the_estimate(scenes):
    """Catches an overhead that leaves out the time after the walks (the scores, the front end's drawing) or
    never reaches the estimate: the walks alone underestimated a quick look by 30 %."""
    explorer = Explorer(torch.device("cpu"))
    settings = RunSettings("demo-shapes", "demo-shapes", methods=("ig", "gi"), steps=4)
    states, drawn = [], False
    for state in explorer.run(scenes[1], settings):
        states.append(state)
        if len(state.results) == 2 and not drawn:  # every walk has ended: a front end draws the maps
            time.sleep(0.3)
            drawn = True
    final = states[-1]
    assert final.complete and final.overhead_seconds >= 0.3
    assert all(state.overhead_seconds is None for state in states[:-1])
    assert explorer.estimate(settings).overhead == 0.0
    explorer.remember(scenes[1], final)
    assert explorer.estimate(settings).overhead == pytest.approx(final.overhead_seconds)
