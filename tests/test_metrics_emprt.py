"""Efficient MPRT through Quantus, against a brute-force version of its definition written here."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from magig_core import explain
from magig_core.cli import main
from magig_core.data.demo import demo_set
from magig_core.metrics.emprt import SEED, emprt
from magig_core.models import load_classifier
from tests.conftest import small_cnn
from tests.test_evaluate_cli import demo_weights as demo_weights


def _gi(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return explain(images, model, "gi", targets=targets, objective="logit").attributions


def _edges(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A map that ignores the model: the Sobel gradient magnitude of the input, per channel."""
    kernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype)
    weights = torch.stack([kernel, kernel.T]).unsqueeze(1).repeat(images.shape[1], 1, 1, 1)
    grads = F.conv2d(images, weights, padding=1, groups=images.shape[1])
    return grads.view(images.shape[0], images.shape[1], 2, *images.shape[-2:]).norm(dim=2)


def _entropy(values: np.ndarray, bins: int = 100) -> float:
    counts = np.histogram(values, bins=bins)[0].astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _brute_force(explainer, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """The definition spelled out: every layer re-initialized from seed + 1, entropy of a 100-bin histogram."""
    randomized = copy.deepcopy(model)
    for module in randomized.modules():
        if hasattr(module, "reset_parameters"):
            torch.manual_seed(SEED + 1)
            module.reset_parameters()
    before = explainer(model, images, targets).numpy()
    after = explainer(randomized, images, targets).numpy()
    return [(_entropy(b) - _entropy(a)) / _entropy(a) for a, b in zip(before, after, strict=True)]


def _setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = small_cnn(num_classes=4)
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    return model, images, model(images).argmax(1)


def test_quantus_equals_the_definition_computed_by_hand() -> None:
    """Catches a wrong sign or denominator, maps of the randomized model reused from the trained one (score 0),
    a randomization that leaves layers trained, or scores handed back in another image order."""
    model, images, targets = _setup()
    ours = emprt(_gi, model, images, targets, _gi(model, images, targets))
    expected = torch.tensor(_brute_force(_gi, model, images, targets), dtype=torch.float64)
    assert torch.allclose(ours, expected, rtol=0, atol=1e-9)
    assert ours.abs().min() > 1e-3


def test_a_map_that_ignores_the_model_scores_zero_and_gi_does_not() -> None:
    """The definition's prediction: randomizing the layers leaves an edge detector's map unchanged (exactly 0),
    while GI's map follows the model. Catches a metric that scores the map rather than its change."""
    model, images, targets = _setup()
    edges = emprt(_edges, model, images, targets, _edges(model, images, targets))
    gi = emprt(_gi, model, images, targets, _gi(model, images, targets))
    assert edges.tolist() == [0.0, 0.0, 0.0]
    assert (gi.abs() > 0.01).all()


@pytest.mark.slow
def test_evaluate_adds_an_emprt_column_on_request(demo_weights: Path, tmp_path: Path) -> None:
    """``--metrics emprt`` fills each record with the metric of that image's map (recomputed here); without it the
    column stays out of the table and the value is empty. Catches a score of the wrong method or images."""
    base = ["evaluate", "--data", "demo", "--limit", "2", "--methods", "gi,ig", "--steps", "4", "--classifier-weights",
            str(demo_weights), "--device", "cpu", "--no-progress", "--out"]
    assert main([*base, str(tmp_path / "plain")]) == 0
    assert "EMPRT" not in (tmp_path / "plain" / "table.md").read_text()
    assert main([*base, str(tmp_path / "emprt"), "--metrics", "emprt"]) == 0
    assert "demo-shapes EMPRT ↑" in (tmp_path / "emprt" / "table.md").read_text()
    records = [json.loads(line) for line in (tmp_path / "emprt" / "records.jsonl").read_text().splitlines()]
    classifier = load_classifier("demo-shapes", weights=demo_weights, device="cpu")
    images = torch.stack([demo_set(2, size=16).load(i) for i in range(2)])
    labels = torch.tensor([demo_set(2, size=16).items[i].label for i in range(2)])
    for method in ("gi", "ig"):
        def run(model: nn.Module, x: torch.Tensor, t: torch.Tensor, method: str = method) -> torch.Tensor:
            return explain(x, model, method, targets=t, steps=4).attributions

        expected = _brute_force(run, classifier, images, labels)
        found = [r["scores"]["values"]["emprt"] for r in sorted(records, key=lambda r: r["index"])
                 if r["method"] == method]
        assert found == pytest.approx(expected, abs=1e-9)
