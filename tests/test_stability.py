"""explain(stability=K, average=K): agreement of perturbed runs, averaged maps, and the library's thread plan."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from magig_core import explain, runtime
from magig_core.attribution.perturbations import noisy_copies
from tests.conftest import small_cnn

NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class Bilinear(nn.Module):
    """Two logits whose difference is (u·x)(v·x): the input gradient turns as the path moves, so which
    elements the guided rule moves first depends on every earlier step (flipped selections)."""

    def __init__(self, pixels: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.u = nn.Parameter(torch.randn(pixels, generator=generator, dtype=torch.float64), requires_grad=False)
        self.v = nn.Parameter(torch.randn(pixels, generator=generator, dtype=torch.float64), requires_grad=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(1)
        score = (flat @ self.u) * (flat @ self.v)
        return torch.stack([score, -score], dim=1)


def _linear(pixels: int) -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Flatten(), nn.Linear(pixels, 2)).double().eval().requires_grad_(False)


def _brute_force_top(saliency: np.ndarray) -> set[int]:
    """Indices of the ⌈0.1·n⌉ largest values, ties to the lower index: a plain Python sort."""
    values = saliency.ravel().tolist()
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return set(order[:math.ceil(0.1 * len(values))])


def test_ig_on_a_linear_model_is_perfectly_stable():
    """IG on a two-class linear model has one gradient direction along the whole path, so every point
    count gives the same map up to a positive factor. Catches: IoU or rank correlation computed wrongly
    (e.g. against the wrong run, or a rank that is not scale-free), and perturbations that change the
    map's definition (noise where point counts were asked for)."""
    images = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    explanation = explain(images, _linear(192), "ig", steps=10, stability=4, normalization=NORM)
    assert explanation.config["point_counts"] == [10, 9, 8, 7]
    assert explanation.stability.tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert explanation.stability_rank.tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert set(explanation.agreement.unique().tolist()) <= {0.0, 1.0}


def test_a_guided_path_with_flipped_selections_is_less_stable_than_ig():
    """GIG on a model whose gradient turns with every step: neighbouring point counts move different
    elements first and the maps' top pixels differ. Catches: a stability that compares a run with itself
    or ignores the perturbation (it would report 1)."""
    images = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    model = Bilinear(192)
    guided = explain(images, model, "gig", steps=12, stability=4, normalization=NORM)
    straight = explain(images, _linear(192), "ig", steps=12, stability=4, normalization=NORM)
    assert (guided.stability < 0.9).all()
    assert (guided.stability < straight.stability).all()


def test_agreement_and_iou_equal_a_brute_force_count_over_separate_runs():
    """The agreement map is, per pixel, the share of separate runs (N, N−1, N−2 points) that put it in
    their top 10 %; the IoU is the mean over pairs of set overlaps. Both are recounted here with Python
    sets from three independent explain() calls. Catches: off-by-one top counts, masks taken over the
    wrong axis (channels or batch), agreement from the wrong runs, and a returned map that stability
    changed."""
    images = torch.rand(2, 3, 8, 8)
    model = small_cnn(num_classes=3)
    explanation = explain(images, model, "gig", steps=9, stability=3, normalization=NORM)
    runs = [explain(images, model, "gig", steps=s, normalization=NORM).attributions for s in (9, 8, 7)]
    torch.testing.assert_close(explanation.attributions, runs[0], rtol=0, atol=0)
    for b in range(2):
        tops = [_brute_force_top(run[b].abs().sum(0).double().numpy()) for run in runs]
        counts = np.zeros(64)
        for top in tops:
            counts[list(top)] += 1
        np.testing.assert_allclose(explanation.agreement[b].flatten().double().numpy(), counts / 3, atol=1e-7)
        pairs = [(0, 1), (0, 2), (1, 2)]
        iou = sum(len(tops[i] & tops[j]) / len(tops[i] | tops[j]) for i, j in pairs) / 3
        assert float(explanation.stability[b]) == pytest.approx(iou, abs=1e-6)


@pytest.mark.parametrize(("method", "perturbation"), [("gig", "auto"), ("ig", "noise"), ("gi", "auto")])
def test_average_equals_the_mean_of_separate_runs(method, perturbation):
    """average=K is the mean of the K perturbed runs made one by one: N, N−1, … points, or the K noisy
    copies of the input (copy 0 clean), each explained for the clean image's class. Catches: lockstep
    rows mixed up between copies, a wrong divisor, copies that explain their own predicted class, and
    run 0 not being the plain call."""
    images = torch.rand(2, 3, 8, 8)
    model = small_cnn(num_classes=3)
    averaged = explain(images, model, method, steps=7, average=3, perturbation=perturbation, normalization=NORM)
    if averaged.config["perturbation"] == "points":
        separate = [explain(images, model, method, steps=s, normalization=NORM).attributions for s in (7, 6, 5)]
    else:
        copies = noisy_copies(images, 3, seed=0)
        assert torch.equal(copies[:2], images)
        targets = explain(images, model, method, steps=7, normalization=NORM).targets
        separate = [explain(copies[2 * r:2 * r + 2], model, method, steps=7, targets=targets,
                            normalization=NORM).attributions for r in range(3)]
    torch.testing.assert_close(averaged.attributions, torch.stack(separate).mean(0), rtol=1e-5, atol=1e-7)
    assert averaged.config["average"] == 3


def test_stability_of_averages_compares_disjoint_groups():
    """stability=2, average=2 compares the mean of runs (N, N−1) with the mean of (N−2, N−3) and returns
    the first. Catches: groups that overlap or a map that is not the first group's mean."""
    images = torch.rand(1, 3, 8, 8)
    model = small_cnn(num_classes=3)
    both = explain(images, model, "gig", steps=8, stability=2, average=2, normalization=NORM)
    assert both.config["point_counts"] == [8, 7, 6, 5]
    first = explain(images, model, "gig", steps=8, average=2, normalization=NORM)
    torch.testing.assert_close(both.attributions, first.attributions, rtol=0, atol=0)
    second = explain(images, model, "gig", steps=6, average=2, normalization=NORM)
    tops = [_brute_force_top(e.attributions[0].abs().sum(0).double().numpy()) for e in (first, second)]
    assert float(both.stability[0]) == pytest.approx(len(tops[0] & tops[1]) / len(tops[0] | tops[1]), abs=1e-6)


def test_plain_explain_uses_the_work_sized_plan_and_restores_torch_threads(monkeypatch):
    """A script's explain() runs small images on one thread under the passive policy and gives torch its
    count back; a count the user set after import is left alone. Catches: the plan not applied to
    library calls (two threads at 8 px), a count that leaks out of the call, and overriding the user."""
    for name in (runtime.THREADS_ENV, "OMP_NUM_THREADS", runtime.RUNS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(runtime, "_configured", None)
    monkeypatch.setattr(runtime, "_policy_in_effect", runtime.PASSIVE)
    monkeypatch.setattr(runtime, "available_cores", lambda: 2)
    before = torch.get_num_threads()
    seen: list[int] = []
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(runtime, "_torch_threads_at_import", 2)
        explain(torch.rand(1, 3, 8, 8), small_cnn(num_classes=3), "ig", steps=3, normalization=NORM,
                callback=lambda done, total: seen.append(torch.get_num_threads()))
        assert set(seen) == {1} and torch.get_num_threads() == 2
        monkeypatch.setattr(runtime, "_torch_threads_at_import", 3)  # the user changed it since import
        seen.clear()
        explain(torch.rand(1, 3, 8, 8), small_cnn(num_classes=3), "ig", steps=3, normalization=NORM,
                callback=lambda done, total: seen.append(torch.get_num_threads()))
        assert set(seen) == {2}
    finally:
        torch.set_num_threads(before)


def test_the_quick_look_label_quotes_the_stability_study():
    """Catches a quick-look button whose numbers drifted from the study it cites: MA-GIG's mean stability IoU
    and DiffID top-1 at the quick look's and the paper's point counts, read from the study's own results."""
    import json
    import statistics
    from pathlib import Path

    from magig_core.explorer.settings import QUICK_LOOK, QUICK_LOOK_MEASURED

    study = json.loads((Path(__file__).parents[1] / "benchmarks/results/stability_study.json").read_text())
    for points, (iou, diffid) in QUICK_LOOK_MEASURED.items():
        row = study["points"][str(points)]["ma-gig"]
        assert round(statistics.fmean(row["stability_iou"]), 2) == iou, points
        assert round(statistics.fmean(row["diffid_top1"]), 2) == diffid, points
        assert f"{iou:.2f}" in QUICK_LOOK and f"{diffid:+.2f}" in QUICK_LOOK
