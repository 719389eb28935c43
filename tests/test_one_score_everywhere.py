"""One name, one number: the app's metrics table, the ``explain`` CLI's JSON summary and ``evaluate``'s record
show the same value for every metric they share, for one bundled CIFAR-10 image explained for its label."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from magig_core.cli import main
from magig_core.data.datasets import CIFAR10_TEST_DIR, cifar10_test
from magig_core.explorer.render import metrics_table
from magig_core.explorer.service import Explorer
from magig_core.explorer.settings import RunSettings
from magig_core.metrics.definitions import METRICS

METHODS = ("ig", "gig")
STEPS, SIZE = 16, 32  # the CIFAR-10 images' own size: no pipeline resizes


def _app_values(path: Path, label: int) -> dict[str, dict[str, float]]:
    """The numbers of the app's table, read back by column title through the explorer the app drives."""
    explorer = Explorer(torch.device("cpu"))
    settings = RunSettings("cifar10-resnet56", "taef2", methods=METHODS, steps=STEPS, target=label, size=SIZE,
                           frames=STEPS)
    state = list(explorer.run(str(path), settings))[-1]
    headers, rows = metrics_table(state.context, state.results)
    distance = headers[[m.name for m in METRICS].index("distance_auc") + 1].removesuffix(" AUC ↓")
    titles = {m.column(distance): m.name for m in METRICS}
    return {method: {titles[h]: v for h, v in zip(headers, row, strict=True) if h in titles}
            for method, row in zip(METHODS, rows, strict=True)}


@pytest.mark.slow
def test_app_table_explain_summary_and_evaluate_record_agree(tmp_path: Path) -> None:
    """Catches a front end that scores by its own rule under a shared name: the app's old ``diffid`` (mean
    probability) next to evaluate's top-1 one, a residual divided by a clamped gap in one place only, a
    distance AUC over different frames, or a table column that reads another metric's value."""
    image_set = cifar10_test(size=SIZE)
    item = image_set.items[0]
    path = CIFAR10_TEST_DIR / item.image_id

    out = tmp_path / "evaluate"
    assert main(["evaluate", "--dataset", "cifar10", "--limit", "1", "--image-size", str(SIZE), "--steps", str(STEPS),
                 "--methods", ",".join(METHODS), "--path-distance-images", "1", "--device", "cpu", "--out", str(out),
                 "--no-progress"]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert {r["image_id"] for r in records} == {item.image_id}
    evaluated = {r["method"]: r["scores"]["values"] for r in records}

    assert main(["explain", str(path), "--methods", ",".join(METHODS), "--steps", str(STEPS), "--frames", str(STEPS),
                 "--target", str(item.label), "--size", str(SIZE), "--device", "cpu", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / f"{path.stem}_summary.json").read_text())["methods"]
    explained = {method: summary[method]["scores"]["values"] for method in METHODS}

    shown = _app_values(path, item.label)
    for method in METHODS:
        for source in (evaluated[method], explained[method], shown[method]):
            assert source["diffid_top1"] is not None and math.isfinite(source["diffid_top1"])
        shared = [name for name in evaluated[method] if evaluated[method][name] is not None
                  and explained[method].get(name) is not None]
        assert {"diffid_top1", "diffid_prob", "completeness_relative", "distance_auc"} <= set(shared)
        for name in shared:
            assert explained[method][name] == pytest.approx(evaluated[method][name], rel=1e-5, abs=1e-7), name
            displayed = shown[method][name]  # four significant digits
            assert displayed == pytest.approx(evaluated[method][name], rel=6e-4, abs=1e-9), name
