"""The one scoring step against brute force: every metric of the list recomputed here, element by element,
from the classifier's raw network, hand-built perturbations and hand-summed trapezoids."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from magig_core import explain
from magig_core.metrics.definitions import METRIC_NAMES, METRICS, metric
from magig_core.metrics.perceptual import PixelRmseDistance
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores, score
from magig_core.models.image_classifier import ImageClassifier
from magig_core.slide import maps_slide
from magig_core.talk import slide_caption

RATIOS = (0.1, 0.3, 0.5, 0.7, 0.9)
MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


class _Autoencoder:
    """A fixed non-identity autoencoder: 2×2 average pooling and nearest upsampling, then a contrast change."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(images, 2)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(latents, scale_factor=2) * 1.2 - 0.1


def _classifier() -> ImageClassifier:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    with torch.no_grad():
        net[3].weight.mul_(8)  # confident enough that perturbations flip the top-1 class
    return ImageClassifier(net, mean=MEAN, std=STD, class_names=list("abcde"), input_size=(8, 8))


def _brute_force_games(clf: ImageClassifier, image: torch.Tensor, attributions: torch.Tensor,
                       target: int) -> tuple[dict, dict]:
    """Both games one ratio at a time in the classifier's normalized space, from the raw network: the
    metrics and the per-ratio top-1 curves."""
    z = ((image - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)).flatten().double()
    importance = attributions.flatten().abs().double().numpy()
    order = sorted(range(len(z)), key=lambda i: (-importance[i], i))  # most important first, ties by index
    n = len(z)

    def outcome(replaced: set[int]) -> tuple[float, float]:
        kept = [float(z[i]) for i in range(n) if i not in replaced]
        fill = sum(kept) / (len(kept) + 1e-8)
        values = torch.tensor([fill if i in replaced else float(z[i]) for i in range(n)], dtype=torch.float32)
        with torch.no_grad():
            probs = clf.network(values.view(1, 3, 8, 8)).softmax(-1)[0]
        return float(probs.argmax() == target), float(probs[target])

    with torch.no_grad():
        p0 = float(clf.network(z.float().view(1, 3, 8, 8)).softmax(-1)[0, target])
    games: dict[str, list[float]] = {k: [] for k in ("ins_top1", "del_top1", "ins_p", "del_p")}
    for r in RATIOS:
        m = int(n * r)
        top1, p = outcome(set(order[:m]))
        games["del_top1"].append(top1)
        games["del_p"].append(p)
        top1, p = outcome(set(order[n - m:]))
        games["ins_top1"].append(top1)
        games["ins_p"].append(p)
    mean = {k: sum(v) / len(v) for k, v in games.items()}
    soft = {k: sum(min(p / (p0 + 1e-8), 1.0) for p in games[f"{k}_p"]) / len(RATIOS) for k in ("ins", "del")}
    curves = {"insertion_top1": games["ins_top1"], "deletion_top1": games["del_top1"]}
    return {
        "insertion_top1": mean["ins_top1"], "deletion_top1": mean["del_top1"],
        "diffid_top1": mean["ins_top1"] - mean["del_top1"],
        "insertion_prob": mean["ins_p"], "deletion_prob": mean["del_p"], "diffid_prob": mean["ins_p"] - mean["del_p"],
        "insertion_soft": soft["ins"], "deletion_soft": soft["del"],
    }, curves


def _trapezoid(values: list[float], t: list[float]) -> float:
    return sum((t[k + 1] - t[k]) * (values[k] + values[k + 1]) / 2 for k in range(len(t) - 1))


def _half_mass_position(clf: ImageClassifier, image: torch.Tensor, target: int, alphas: list[float]) -> float:
    """IG's t50 by hand: segment k collects Σ|∇p(α_k x) ⊙ x|/(N−1) (the same in [0,1] and normalized space, as
    the normalization's scale cancels); t where the running share first reaches ½, linear in between."""
    masses = []
    for alpha in alphas[:-1]:
        point = (alpha * image).requires_grad_(True)
        (grad,) = torch.autograd.grad(clf(point).softmax(-1)[0, target], point)
        masses.append(float((grad * image).abs().sum()) / (len(alphas) - 1))
    shares = np.concatenate([[0.0], np.cumsum(masses) / sum(masses)])
    k = int(np.argmax(shares >= 0.5))
    return alphas[k - 1] + (0.5 - shares[k - 1]) / (shares[k] - shares[k - 1]) * (alphas[k] - alphas[k - 1])


def _rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.clamp(0, 1).double() - b.clamp(0, 1).double()).pow(2).mean().sqrt())


def test_every_metric_matches_a_brute_force_computation() -> None:
    """IG on one 8×8 image, scored for its predicted class, against values computed here.

    Catches a game that keeps the wrong end of the ranking, a mean taken in [0,1] space instead of the
    normalized one, top-1 and probability games swapped under each other's names, a soft score that is
    not clamped, a relative residual divided by a clamped or signed gap, a k/N path grid, distances to the
    wrong image, localization read from |A| instead of the signed channel sum, and stability not read from
    the explanation's two runs (N and N − 1 points; scipy's Spearman as the oracle).
    """
    clf = _classifier()
    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        probs = clf(image).softmax(-1)[0]
    target = int(probs.argmax())  # the prediction: a class the games can keep and lose
    n = 6
    explanation = explain(image, clf, "ig", steps=n, targets=[target], frames=n, stability=2)
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 2:6, 1:5] = True
    autoencoder = _Autoencoder()
    (scores,) = score(explanation, clf, image, ratios=RATIOS, distance=PixelRmseDistance(), autoencoder=autoencoder,
                      masks=masks)

    expected, curves = _brute_force_games(clf, image[0], explanation.attributions[0], target)
    alphas = [k / (n - 1) for k in range(n)]
    with torch.no_grad():
        path_p = [float(clf(a * image).softmax(-1)[0, target]) for a in alphas]
    gap = path_p[-1] - path_p[0]  # IG's baseline is black: F_c(input) − F_c(baseline), objective = probability
    residual = abs(float(explanation.attributions.double().sum()) - gap)
    expected.update(completeness_residual=residual, completeness_relative=residual / abs(gap), path_residual=residual,
                    confidence_auc=_trapezoid(path_p, alphas))
    frames = [a * image for a in alphas]
    expected["distance_auc"] = _trapezoid([_rmse(f, image) for f in frames], alphas)
    rebuilt = [autoencoder.decode(autoencoder.encode(f.clamp(0, 1))).clamp(0, 1) for f in frames]
    expected["off_manifold_auc"] = _trapezoid([_rmse(f, r) for f, r in zip(frames, rebuilt, strict=True)], alphas)
    pixel_map = explanation.attributions[0].double().sum(0)
    positive = pixel_map.clamp_min(0)
    expected["energy_in_mask"] = float(positive[masks[0]].sum() / positive.sum())
    peak = int(pixel_map.argmax())
    expected["pointing_game"] = float(masks[0].flatten()[peak])
    expected["emprt"] = math.nan  # reruns the method on a randomized classifier: only evaluate computes it
    expected["t50"] = _half_mass_position(clf, image, target, alphas)

    maps = [explanation.attributions[0], explain(image, clf, "ig", steps=n - 1, targets=[target]).attributions[0]]
    maps = [m.double().abs().sum(0).flatten().numpy() for m in maps]
    tops = [set(np.argsort(-m, kind="stable")[:7].tolist()) for m in maps]  # ⌈0.1 · 64⌉ pixels
    expected["stability_iou"] = len(tops[0] & tops[1]) / len(tops[0] | tops[1])
    expected["stability_rank"] = float(scipy.stats.spearmanr(maps[0], maps[1]).statistic)

    assert set(expected) == set(METRIC_NAMES)
    assert 0 < expected["insertion_top1"] < 1 or 0 < expected["deletion_top1"] < 1  # the top-1 games are not flat
    for name in METRIC_NAMES:
        assert scores[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-6, nan_ok=True), name
    for name, curve in curves.items():
        assert scores.curves[name] == curve, name


def test_a_relative_residual_over_a_zero_gap_is_nan_not_a_huge_number() -> None:
    """Catches a clamped divisor: a constant classifier leaves F_c(input) = F_c(baseline), so the gap is 0."""
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    with torch.no_grad():
        net[1].weight.zero_()
    clf = ImageClassifier(net, class_names=list("abc"), input_size=(4, 4))
    image = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    (scores,) = score(explain(image, clf, "ig", steps=4, targets=[1]), clf, image)
    assert scores["completeness_residual"] == 0.0 and math.isnan(scores["completeness_relative"])
    assert math.isnan(scores["distance_auc"]) and math.isnan(scores["energy_in_mask"])  # nothing to measure


def test_scores_survive_json_and_new_metrics_read_as_nan() -> None:
    """Catches NaN written as a bare NaN token (not strict JSON) and old records failing on a newer list."""
    scores = Scores(target=2, values={name: (math.nan if name == "distance_auc" else 0.25) for name in METRIC_NAMES},
                    curves={"insertion_top1": [1.0, 0.0]})
    text = json.dumps(scores.to_json(), allow_nan=False)
    back = Scores.from_json(json.loads(text))
    assert back.target == 2 and back.curves == scores.curves and math.isnan(back["distance_auc"])
    assert {k: v for k, v in back.values.items() if k != "distance_auc"} == {
        k: v for k, v in scores.values.items() if k != "distance_auc"}
    older = json.loads(text)
    del older["values"]["pointing_game"]
    assert math.isnan(Scores.from_json(older)["pointing_game"])


def test_every_metric_has_one_definition_and_a_direction() -> None:
    """Catches a name listed twice, a label without its arrow, or an unknown name passing silently."""
    assert len(set(METRIC_NAMES)) == len(METRICS)
    assert all(m.definition.endswith(".") and m.better in ("higher", "lower", "") for m in METRICS)
    assert metric("diffid_top1").column() == "DiffID top-1 ↑" and metric("deletion_prob").column() == "Deletion p ↓"
    with pytest.raises(KeyError, match="diffid_top1"):
        metric("diffid")
    np.testing.assert_array_equal([m.name for m in METRICS][:3], ["diffid_top1", "insertion_top1", "deletion_top1"])


def test_the_evaluation_guide_defines_every_metric_of_the_list() -> None:
    """Catches a metric added to the list without its row in docs/evaluation.md's table of names."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "evaluation.md").read_text()
    missing = [m.name for m in METRICS if f"| `{m.name}` | {m.column()} |" not in guide]
    assert not missing, f"add these to the 'Metric names' table: {missing}"


def test_a_scored_method_survives_json_with_its_scores_time_and_configuration() -> None:
    """Catches a field dropped on the way out or back (the app's report, explain's summary and evaluate's
    records all store this one shape) and a NaN time written as a bare NaN token."""
    scores = Scores(target=1, values={name: 0.5 for name in METRIC_NAMES}, curves={"deletion_top1": [0.0, 1.0]})
    result = ScoredMethod("gig", scores, 1.25, {"steps": 16, "fraction": 0.1})
    back = ScoredMethod.from_json(json.loads(json.dumps(result.to_json(), allow_nan=False)))
    assert back == result and back.label == "GIG" and back.target == 1
    untimed = ScoredMethod("ig", scores, math.nan)
    assert math.isnan(ScoredMethod.from_json(json.loads(json.dumps(untimed.to_json(), allow_nan=False))).seconds)


def test_the_talk_slide_shows_the_paper_s_diffid_under_each_map() -> None:
    """Catches a slide caption that shows another metric, a value other than the scores' own, or text for a
    method without one; and a slide that drops the captions it was given (its pixels would not change)."""
    values = {name: math.nan for name in METRIC_NAMES}
    assert slide_caption(Scores(target=0, values={**values, "diffid_top1": 1 / 3, "diffid_prob": 0.9})) == (
        "DiffID top-1\n0.333")
    assert slide_caption(Scores(target=0, values=values)) == ""
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    maps = [np.random.default_rng(0).random((8, 8))]

    def pixels(captions: list[str] | None) -> np.ndarray:
        buffer = io.BytesIO()
        maps_slide(image, maps, ["IG"], size=(320, 180), captions=captions).savefig(buffer, format="rgba")
        return np.frombuffer(buffer.getvalue(), dtype=np.uint8)

    assert (pixels(["DiffID top-1\n0.333"]) != pixels(None)).any()
