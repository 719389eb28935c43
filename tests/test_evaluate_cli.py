"""``python -m magig_core evaluate`` end to end on the demo world with tiny untrained demo models."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from magig_core.attribution.api import explain
from magig_core.cli import main
from magig_core.data.demo import demo_set
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.metrics import faithfulness
from magig_core.models import load_classifier
from magig_core.models.demo_shapes import build_autoencoder_model, build_classifier_network

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_weights(tmp_path_factory) -> Path:
    """A tiny demo classifier and autoencoder (random weights) in the bundled-weights layout, 16×16 images."""
    out = tmp_path_factory.mktemp("demo-weights")
    torch.manual_seed(5)
    clf_config = {"widths": [4, 8], "num_classes": len(CLASS_NAMES)}
    ae_config = {"in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * 2,
                 "up_block_types": ["UpDecoderBlock2D"] * 2, "block_out_channels": [8, 16], "layers_per_block": 1,
                 "latent_channels": 4, "norm_num_groups": 4, "sample_size": 16, "mid_block_add_attention": False}
    network = build_classifier_network(clf_config)
    with torch.no_grad():  # spread the logits so predictions vary between images
        network.fc.weight.mul_(20)
    autoencoder = build_autoencoder_model(ae_config)
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(out / "classifier.safetensors"))
    save_file({k: v.contiguous() for k, v in autoencoder.state_dict().items()}, str(out / "autoencoder.safetensors"))
    card = {"classifier": {"config": clf_config}, "autoencoder": {"config": ae_config}, "image_size": 16,
            "class_names": list(CLASS_NAMES)}
    (out / "card.json").write_text(json.dumps(card))
    return out


def _args(weights: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--data", "demo", "--limit", "4", "--steps", "6", "--methods", "gi,ig,ma-gig",
            "--classifier-weights", str(weights), "--autoencoder-weights", str(weights), "--device", "cpu",
            "--out", str(out), "--no-progress", *extra]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def _comparable(summary: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds_per_image"} for r in summary["results"]]


def test_evaluate_writes_every_output_and_resumes(demo_weights: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_args(demo_weights, out, "--path-distance-images", "2", "--batch-size", "2")) == 0
    summary = json.loads((out / "summary.json").read_text())
    records = _records(out)
    assert len(records) == 4 * 3 and summary["records_written_this_run"] == 12
    assert [r["method"] for r in summary["results"]] == ["gi", "ig", "ma-gig"]
    assert summary["versions"]["torch"] == torch.__version__ and summary["missing_records"] == 0

    for result in summary["results"]:
        mine = [r["scores"] for r in records if r["method"] == result["method"]]
        assert result["images"] == 4
        assert result["diffid_top1"] == pytest.approx(sum(r["values"]["diffid_top1"] for r in mine) / 4)
        assert result["insertion_top1"] - result["deletion_top1"] == pytest.approx(result["diffid_top1"])
        assert result["deletion_top1_curve"] == pytest.approx(
            [sum(r["curves"]["deletion_top1"][k] for r in mine) / 4 for k in range(9)])
    path_records = [r for r in records if r["method"] in ("ig", "ma-gig")]
    assert all((r["scores"]["values"]["distance_auc"] is not None) == (r["index"] < 2) for r in path_records)
    assert {r["scores"]["distance"] for r in path_records if r["index"] < 2} == {"pixel-rmse"}  # no LPIPS here

    # The per-image outcome in a record is what the metric gives for that image's attribution.
    classifier = load_classifier("demo-shapes", weights=demo_weights, device="cpu")
    images = torch.stack([demo_set(4, size=16).load(i) for i in range(2)])
    labels = torch.tensor([demo_set(4, size=16).items[i].label for i in range(2)])
    expl = explain(images, classifier, "ig", targets=labels, steps=6)
    direct = faithfulness(classifier, images, expl.attributions, labels)
    ig = sorted((r for r in records if r["method"] == "ig" and r["index"] < 2), key=lambda r: r["index"])
    assert [r["scores"]["curves"]["insertion_top1"] for r in ig] == direct.insertion_correct.int().tolist()
    np.testing.assert_allclose([r["scores"]["curves"]["deletion_soft"] for r in ig], direct.deletion_soft.numpy(),
                               atol=1e-5)
    assert [r["scores"]["values"]["confidence_auc"] for r in ig] == pytest.approx(
        torch.trapezoid(expl.path_probs.double(), dx=1 / 5, dim=1).tolist(), abs=1e-6)

    csv_lines = (out / "summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("classifier,method,images,diffid_top1,insertion_top1") and len(csv_lines) == 4
    table = (out / "table.md").read_text()
    assert ("| Method | demo-shapes DiffID top-1 ↑ | demo-shapes Insertion top-1 ↑ | demo-shapes Deletion top-1 ↓ |"
            in table)
    paper_layout = table.split("| Method | Classifier")[0]  # then the mean ± s.e. and paired-difference table
    assert [line.split("|")[1].strip() for line in paper_layout.splitlines() if line.startswith("| ")][1:] == [
        "GI", "IG", "MA-GIG"]

    # Resume: nothing new is computed, the files and numbers stay the same.
    before = {p.name: p.read_text() for p in (out / "records").iterdir()}
    assert main(_args(demo_weights, out, "--path-distance-images", "2", "--batch-size", "2")) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["records_written_this_run"] == 0
    assert {p.name: p.read_text() for p in (out / "records").iterdir()} == before
    assert _comparable(again) == _comparable(summary)

    # A run whose records were written before the metrics were renamed resumes: nothing is recomputed and the
    # summary reads the same numbers under the new names.
    for path in (out / "records").iterdir():
        lines = path.read_text().splitlines()
        path.write_text("".join(json.dumps(_old_format(json.loads(line))) + "\n" for line in lines))
    assert main(_args(demo_weights, out, "--path-distance-images", "2", "--batch-size", "2")) == 0
    old = json.loads((out / "summary.json").read_text())
    assert old["records_written_this_run"] == 0
    keep = ("images", "diffid_top1", "insertion_top1", "deletion_top1", "completeness_residual",
            "completeness_relative", "confidence_auc", "distance_auc", "insertion_soft", "original_accuracy")
    for mine, theirs in zip(old["results"], summary["results"], strict=True):
        assert {k: mine[k] for k in keep} == pytest.approx({k: theirs[k] for k in keep})
        assert mine["deletion_top1_curve"] == theirs["deletion_top1_curve"]

    # A changed setting is a new configuration: fresh records next to the old ones.
    assert main(_args(demo_weights, out, "--methods", "ig", "--steps", "5")) == 0
    changed = json.loads((out / "summary.json").read_text())
    assert changed["records_written_this_run"] == 4 and changed["results"][0]["config"]["steps"] == 5
    capsys.readouterr()


def _old_format(record: dict) -> dict:
    """The record as evaluate wrote it before the metrics had one name each: flat keys, top-1 games unnamed."""
    values, curves = record["scores"]["values"], record["scores"]["curves"]
    old = {k: record[k] for k in ("image_id", "index", "label", "classifier", "method", "config_hash", "job_index",
                                  "seconds", "metric_seconds")}
    old.update(insertion=values["insertion_top1"], deletion=values["deletion_top1"], diffid=values["diffid_top1"],
               insertion_correct=curves["insertion_top1"], deletion_correct=curves["deletion_top1"],
               insertion_soft=curves["insertion_soft"], deletion_soft=curves["deletion_soft"],
               original_correct=record["scores"]["original_correct"], original_prob=record["scores"]["original_prob"],
               completeness_residual=values["completeness_residual"],
               relative_completeness_residual=values["completeness_relative"], confidence_auc=values["confidence_auc"])
    if values["distance_auc"] is not None:
        old.update(distance=record["scores"]["distance"], distance_auc=values["distance_auc"],
                   distance_curve=curves["distance"])
    return old


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "ig,shap"], "unknown method"),
        (["--fraction", "gig=0.1,eig=0.2"], "does not apply to eig"),
        (["--ratios", "0.5,2"], "--ratios"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_bad_options_fail_with_a_clear_message(demo_weights, tmp_path, capsys, extra, message) -> None:
    assert main(_args(demo_weights, tmp_path / "bad", *extra)) == 2
    assert message in capsys.readouterr().err


def test_missing_data_and_missing_autoencoder_are_explained(demo_weights, tmp_path, capsys) -> None:
    args = ["evaluate", "--data", str(tmp_path / "nowhere"), "--classifier", "demo-shapes", "--methods", "ig",
            "--classifier-weights", str(demo_weights), "--device", "cpu", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "does not exist" in capsys.readouterr().err
    folder = tmp_path / "imgs"
    for name in CLASS_NAMES[:2]:
        (folder / name).mkdir(parents=True)
    args[2] = str(folder)
    assert main([*args[:6], "ma-gig", *args[7:]]) == 2
    assert "--autoencoder" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_give_the_one_process_summary(demo_weights: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(_args(demo_weights, one, "--methods", "ig,ma-gig")) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "magig_core", *_args(demo_weights, two, "--methods", "ig,ma-gig")]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in (two / "records").iterdir()) == ["rank0.jsonl", "rank1.jsonl"]
    merged = json.loads((two / "summary.json").read_text())
    assert merged["world_size"] == 2 and merged["records_written_this_run"] == 8
    assert _comparable(merged) == _comparable(json.loads((one / "summary.json").read_text()))
    strip = lambda rs: [{k: v for k, v in r.items() if "seconds" not in k} for r in rs]  # noqa: E731
    assert strip(_records(two)) == strip(_records(one))


def test_evaluate_reports_stability_as_a_metric(demo_weights: Path, tmp_path: Path) -> None:
    """--stability 2 makes stability_iou a column of evaluate's summary (a mean of per-image overlaps in
    [0, 1]) and a new configuration; without it the column is empty (NaN). Catches the option not
    reaching the jobs' explain() calls or not reaching the records."""
    out = tmp_path / "stable"
    assert main(_args(demo_weights, out, "--methods", "ig", "--limit", "2", "--stability", "2")) == 0
    [row] = json.loads((out / "summary.json").read_text())["results"]
    assert 0 <= row["stability_iou"] <= 1 and row["config"]["stability"] == 2
    assert main(_args(demo_weights, tmp_path / "plain", "--methods", "ig", "--limit", "2")) == 0
    [plain] = json.loads((tmp_path / "plain" / "summary.json").read_text())["results"]
    assert plain["stability_iou"] is None or math.isnan(plain["stability_iou"])
