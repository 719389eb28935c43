"""Talk mode in the explorer library: warmed-up examples, shareable settings, slides of a run (no server)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from magig_core.explorer.render import frames_at, method_maps
from magig_core.explorer.report import build_report
from magig_core.explorer.service import Explorer
from magig_core.explorer.settings import RunSettings, SettingsError
from magig_core.explorer.share import (
    SharedRun,
    example_name,
    example_of_file,
    find_example,
    from_query,
    open_report,
    settings_from_report,
    to_query,
)
from magig_core.explorer.slides import write_slides
from magig_core.explorer.warmup import warm_policy

DEMO = RunSettings(classifier="demo-shapes", autoencoder="demo-shapes", steps=8)


@pytest.fixture(scope="module")
def explorer() -> Explorer:
    found = Explorer()
    found.examples = [e for e in found.examples if e.caption.startswith("demo")][:3]
    return found


def finished(explorer: Explorer, path: str, settings: RunSettings):
    *_, state = explorer.run(path, settings)
    return state


def assert_same_maps(a, b) -> None:
    assert [r.method for r in a.results] == [r.method for r in b.results]
    for left, right in zip(method_maps(a.context, a.results), method_maps(b.context, b.results), strict=True):
        np.testing.assert_array_equal(left[0], right[0])
    for left, right in zip(frames_at(a.context, a.results, 0.4), frames_at(b.context, b.results, 0.4), strict=True):
        np.testing.assert_array_equal(left[0], right[0])


# Warm-up ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "policy"), [
    ({}, "eager"), ({"SYSTEM": "spaces"}, "lazy"), ({"MAGIG_WARM_EXAMPLES": "off"}, "lazy"),
    ({"MAGIG_WARM_EXAMPLES": "0"}, "lazy"), ({"SYSTEM": "spaces", "MAGIG_WARM_EXAMPLES": "eager"}, "eager"),
])
def test_warm_policy_is_eager_locally_and_lazy_on_spaces(env, policy):
    assert warm_policy(env) == policy


def test_warm_up_caches_every_example_and_replays_equal_fresh_runs(explorer):
    warmer = explorer.warm_examples(lambda example: DEMO)
    assert warmer.join(timeout=120)
    assert sorted(warmer.progress.done) == sorted(e.caption for e in explorer.examples)
    assert warmer.progress.skipped == [] and warmer.progress.finished
    assert "3 of 3 examples ready" in warmer.progress.line()
    for example in explorer.examples:
        hit = explorer.cached(example.path, DEMO)
        assert hit is not None and hit.from_cache
        assert_same_maps(hit, finished(explorer, example.path, DEMO))


def test_warm_up_leaves_out_what_settings_for_declines_and_what_would_take_too_long(explorer):
    settings = replace(DEMO, steps=9)
    first = explorer.examples[0]
    warmer = explorer.warm_examples(lambda e: settings if e is first else None, max_run_seconds=0.0)
    assert warmer.join(timeout=60)
    assert warmer.progress.total == 1 and warmer.progress.done == []
    assert "computed on first click" in warmer.progress.skipped[0]
    assert explorer.cached(first.path, settings) is None

    warmer = explorer.warm_examples(lambda e: settings, budget_seconds=0.0)
    assert warmer.join(timeout=60)
    assert len(warmer.progress.skipped) == 3 and "time budget" in warmer.progress.skipped[0]


def test_visitors_come_first_a_warm_run_yields_within_a_step_and_is_retried(explorer):
    slow = replace(DEMO, steps=160, methods=("ma-gig",))
    example = explorer.examples[1]
    warmer = explorer.warm_examples(lambda e: slow if e is example else None)
    deadline = time.monotonic() + 60
    while not explorer.slots.busy:  # the warm-up's run holds the device and walks its path
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with explorer.activity.visitor():
        time.sleep(1.0)
        assert not explorer.slots.busy  # it gave the device up for the visitor
        assert warmer.progress.done == []
    assert warmer.join(timeout=120)
    assert warmer.progress.done == [example.caption]
    assert explorer.cached(example.path, slow) is not None


def test_a_warm_up_waits_while_visitors_are_busy_and_can_be_stopped(explorer):
    settings = replace(DEMO, steps=10)
    with explorer.activity.visitor():
        warmer = explorer.warm_examples(lambda e: settings)
        time.sleep(0.6)
        assert warmer.progress.done == []
        warmer.stop(timeout=10)
    assert warmer.progress.finished
    assert all(explorer.cached(e.path, settings) is None for e in explorer.examples)


def test_visitor_calls_are_counted_but_not_the_warm_up_thread_s_own(explorer):
    assert not explorer.activity.busy
    runs = explorer.run(explorer.examples[0].path, DEMO)
    next(runs)
    assert explorer.activity.busy
    runs.close()
    assert not explorer.activity.busy
    with explorer.activity.background():
        runs = explorer.run(explorer.examples[0].path, DEMO)
        next(runs)
        assert not explorer.activity.busy
        runs.close()


# Sharing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [
    DEMO,
    RunSettings("resnet18", "sd2", ("ma-gig", "gig", "ig"), steps=64, fraction=0.07, interpolation="slerp",
                objective="logit", target=281, precision="bf16", frames=12, seed=3, size=128),
])
def test_settings_survive_a_link(settings):
    query = to_query(settings, example="chelsea_cat.jpg")
    assert query.startswith("?classifier=") and "methods=" + ",".join(settings.methods) in query
    params = dict(pair.split("=", 1) for pair in query[1:].split("&"))
    assert from_query(params, defaults=RunSettings("x", "y")) == SharedRun(settings, "chelsea_cat.jpg")


def test_a_link_without_settings_is_a_plain_visit_and_bad_values_are_named():
    defaults = RunSettings("demo-shapes", "demo-shapes")
    assert from_query({"utm_source": "slides"}, defaults) is None
    assert from_query({"steps": "64"}, defaults) == SharedRun(replace(defaults, steps=64), None)
    with pytest.raises(SettingsError, match="steps value 'many'"):
        from_query({"steps": "many"}, defaults)


def test_a_shared_link_reproduces_the_run_it_came_from(explorer):
    example = explorer.examples[2]
    settings = replace(DEMO, methods=("ma-gig", "gig", "gi"), target=1, fraction=0.2)
    original = finished(explorer, example.path, settings)
    link = to_query(original.settings, example_name(example))
    shared = from_query(dict(p.split("=", 1) for p in link[1:].split("&")), DEMO)
    reopened = find_example(explorer.examples, shared.example)
    assert reopened == example
    assert_same_maps(original, finished(explorer, reopened.path, shared.settings))


def test_a_report_reopens_with_its_settings_and_its_gallery_image(explorer, tmp_path):
    example = explorer.examples[0]
    state = finished(explorer, example.path, replace(DEMO, methods=("gig", "ma-gig"), steps=12))
    report = json.loads(json.dumps(build_report(state.settings, state.context, state.results, device="cpu")))
    shared = open_report(report, explorer)
    assert shared.settings == state.settings and shared.example == example_name(example)
    assert_same_maps(state, finished(explorer, find_example(explorer.examples, shared.example).path,
                                     shared.settings))
    # an uploaded image that is no gallery image restores the settings only
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(noise)
    other = finished(explorer, str(noise), state.settings)
    assert open_report(build_report(other.settings, other.context, other.results, device="cpu"),
                       explorer).example is None
    with pytest.raises(SettingsError, match="not a MA-GIG Explorer report"):
        settings_from_report({"metrics": {}})


def test_a_copy_of_a_gallery_file_is_recognised(explorer, tmp_path):
    example = explorer.examples[1]
    copy = tmp_path / "upload.png"
    shutil.copy(example.path, copy)
    assert example_of_file(explorer.examples, copy) == example
    assert example_of_file(explorer.examples, tmp_path / "missing.png") is None
    assert find_example(explorer.examples, "nothing.png") is None


# Slides of a run ----------------------------------------------------------------------------------

def test_slides_of_a_run_show_its_frames(explorer, tmp_path):
    state = finished(explorer, explorer.examples[0].path, replace(DEMO, methods=("ma-gig", "gi")))
    paths, notes = write_slides(state.context, state.results, tmp_path)
    assert {p.name for p in paths} == {"talk_path.gif", "talk_path.mp4", "talk_slide.png"}
    assert notes == ["GI: no path images, not animated."]
    with Image.open(tmp_path / "talk_path.gif") as gif:
        assert gif.n_frames == len(state.results[0].frames) and gif.size == (1280, 720)
