"""The methods of one run walk side by side, show their maps before their scores, and the estimate follows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.compute import prepare, run_methods, stream_methods
from magig_core.explorer.estimate import Estimate
from magig_core.explorer.settings import RunSettings
from magig_core.metrics import PixelRmseDistance
from tests.conftest import small_cnn


def _run_inputs():
    classifier = small_cnn(num_classes=3)
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    chosen = RunSettings(classifier="demo-shapes", autoencoder="demo-shapes", methods=("gig", "ig", "gi"), steps=6,
                         frames=3)
    distance = PixelRmseDistance(reason="test")
    return classifier, image, chosen, distance, prepare(image, classifier, chosen, distance)


def test_side_by_side_methods_show_each_map_first_and_equal_the_one_by_one_run():
    """Two workers: every method arrives twice, first pending (map final, scores NaN but the walk's own t50)
    then scored, and the maps and scores equal those of the sequential run. Catches rows mixed between
    methods running at once, a pending map that differs from the scored one, scores shown before they exist,
    and a pending t50 other than the scored one."""
    classifier, image, chosen, distance, context = _run_inputs()
    sequential = list(run_methods(image, classifier, None, chosen, context, distance))
    events = list(stream_methods(image, classifier, None, chosen, context, distance, workers=2))
    assert sorted(index for index, _ in events) == [0, 0, 1, 1, 2, 2]
    seen: dict[int, bool] = {}
    for index, result in events:
        assert result.method == chosen.methods[index]
        if result.pending:
            early = {name: value for name, value in result.scores.values.items() if not math.isnan(value)}
            assert index not in seen and set(early) <= {"t50"}
            walked = sequential[index].scores["t50"]
            assert early.get("t50", math.nan) == walked or (math.isnan(walked) and "t50" not in early)
        else:
            assert seen.get(index) is True  # the map came first
        seen[index] = True if result.pending else seen[index]
        np.testing.assert_allclose(result.attributions, sequential[index].attributions, rtol=1e-5, atol=1e-7)
    final = {index: result for index, result in events if not result.pending}
    for index, result in final.items():
        assert result.scores["diffid_prob"] == pytest.approx(sequential[index].scores["diffid_prob"], abs=1e-6)


def test_a_cancel_stops_every_method_running_side_by_side():
    """Catches a worker that keeps walking after the run was cancelled (the pool would block the caller)."""
    classifier, image, chosen, distance, context = _run_inputs()
    calls = {"n": 0}

    def stop_soon() -> bool:
        calls["n"] += 1
        return calls["n"] > 4

    with pytest.raises(RunCancelled):
        list(stream_methods(image, classifier, None, chosen, context, distance, should_stop=stop_soon, workers=2))


@pytest.mark.parametrize(("workers", "expected"), [(1, 17.0), (2, 10.0), (3, 10.0)])
def test_the_estimate_is_the_longest_chain_of_methods_on_one_worker(workers, expected):
    """10 s, 4 s and 3 s on two workers: 10 on one, 4 then 3 on the other, so 10 s; one worker adds them.
    Catches a sum (or a mean) where the methods run side by side."""
    assert Estimate({"ma-gig": 10.0, "gig": 4.0, "ig": 3.0}, "measured", workers).total == expected


def test_perturbed_runs_are_checked_and_multiply_the_estimated_walks():
    """Stability 2 × average 2 walks each method four times (N … N − 3 points): the estimate is four walks
    plus one scoring, recounted here from the spec's passes; 1 stability run, or more runs than points
    allow, is refused. Catches an estimate that ignores the runs and runs that reach a one-point path."""
    from magig_core.attribution import method_spec
    from magig_core.explorer.estimate import METRIC_FORWARDS, PassSeconds, method_seconds
    from magig_core.explorer.settings import SettingsError, validate

    base = RunSettings(classifier="c", autoencoder="a", methods=("gig",), steps=6)
    cost = PassSeconds(0.01, 0.02)
    passes = method_spec("gig").cost(method_spec("gig").make_options({"steps": 6}), 10)
    walk = passes.classifier_forward * 0.01 + passes.classifier_backward * 0.02
    four = RunSettings(**{**base.__dict__, "stability": 2, "average": 2})
    assert method_seconds("gig", four, cost, 10) == pytest.approx(4 * walk + METRIC_FORWARDS * 0.01)
    assert validate(four, on_gpu=False, num_classes=10).runs == 4
    for bad in ({"stability": 1}, {"stability": 3, "average": 2}):  # 6 runs need 7 points
        with pytest.raises(SettingsError):
            validate(RunSettings(**{**base.__dict__, **bad}), on_gpu=False, num_classes=10)
