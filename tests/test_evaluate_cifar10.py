"""``evaluate --dataset cifar10`` runs offline on the bundled images with the bundled real models."""

from __future__ import annotations

import json
from pathlib import Path

from magig_core.cli import main


def test_cifar10_preset_needs_no_data_and_defaults_to_the_bundled_models(tmp_path: Path) -> None:
    args = ["evaluate", "--dataset", "cifar10", "--limit", "2", "--steps", "4", "--methods", "gi,ma-gig",
            "--device", "cpu", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["dataset"], summary["data"], summary["images"]) == ("cifar10", "bundled", 2)
    jobs = {(r["method"], r["classifier"], r["config"].get("autoencoder")) for r in summary["results"]}
    assert jobs == {("gi", "cifar10-resnet56", None), ("ma-gig", "cifar10-resnet56", "taef2")}
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert {r["image_id"] for r in records} == {"airplane/0000.jpg", "automobile/0000.jpg"}


def test_other_datasets_still_require_data(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", "--classifier", "cifar10-resnet20", "--out", str(tmp_path)]) == 2
    assert "--data is required" in capsys.readouterr().err
