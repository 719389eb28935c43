"""The benchmark suites at tiny sizes: their reports' schema, and that one failing section costs nothing else.

The numbers are not asserted (this machine may be busy); what is asserted is what a GPU run must deliver.
"""

from __future__ import annotations

import json

import pytest
import torch

from magig_core import runtime
from magig_core.attribution import all_methods
from magig_core.cli import main
from magig_core.models import load_classifier
from magig_core.perf.contention import Scenario, run_contention_suite
from magig_core.perf.cpu_tricks import fold_batchnorm, run_cpu_suite
from magig_core.perf.sections import STATUSES, Report, SectionResult, Table

GPU_SECTIONS = ["environment", "equality", "step", "precision", "throughput", "methods"]


def _single_report(folder, suite: str) -> dict:
    [path] = folder.glob(f"{suite}-*.json")
    assert path.with_suffix(".md").is_file()
    return json.loads(path.read_text())


def test_gpu_suite_runs_tiny_on_the_cpu_and_reports_every_section(tmp_path) -> None:
    assert main(["benchmark", "--suite", "gpu", "--tiny", "--device", "cpu", "--out", str(tmp_path)]) == 0
    report = _single_report(tmp_path, "gpu")
    assert report["schema"] == 1 and report["suite"] == "gpu" and report["settings"]["tiny"] is True
    assert list(report["sections"]) == GPU_SECTIONS
    for name, section in report["sections"].items():
        assert section["status"] == "ok", (name, section.get("error"))
        assert section["seconds"] >= 0
    names = [spec.name for spec in all_methods()]
    [equality] = report["sections"]["equality"]["tables"]
    assert [row[0] for row in equality["rows"]] == names
    assert all(row[1] == 0.0 for row in equality["rows"])  # CPU against itself: deterministic
    [table12] = report["sections"]["methods"]["tables"]
    assert [row[0] for row in table12["rows"]] == [spec.label for spec in all_methods()]
    assert all(isinstance(value, float) and value > 0 for row in table12["rows"] for value in row[1:])
    [throughput] = report["sections"]["throughput"]["tables"]
    assert [row[0] for row in throughput["rows"]] == [1, 2] and throughput["rows"][0][4] == 1.0
    step = report["sections"]["step"]["tables"][0]
    assert {row[2] for row in step["rows"]} == {"fp32", "bf16"}
    assert "| method |" in (tmp_path / next(tmp_path.glob("gpu-*.md")).name).read_text()


def test_a_failing_section_is_recorded_and_the_rest_still_written(tmp_path) -> None:
    report = Report("gpu", torch.device("cpu"), tmp_path, {"tiny": True}, budget_seconds=60, sections=3)

    def broken() -> SectionResult:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    report.run("first", "Breaks", broken)
    report.run("second", "Works", lambda: SectionResult([Table("t", ["a"], [[1.0]])], {"x": 1}))
    report.budget_seconds = 0
    report.run("third", "Too late", lambda: SectionResult())
    written = _single_report(tmp_path, "gpu")["sections"]
    assert [s["status"] for s in written.values()] == ["error", "ok", "skipped"]
    assert set(s["status"] for s in written.values()) <= set(STATUSES)
    assert "illegal memory access" in written["first"]["error"] and "Traceback" in written["first"]["traceback"]
    assert written["second"]["tables"][0]["rows"] == [[1.0]]


def test_cpu_suite_measures_every_trick_and_survives_a_failing_compile(tmp_path, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    before = torch.get_num_threads()
    try:
        report = run_cpu_suite(tmp_path, tiny=True)
    finally:
        torch.set_num_threads(before)
    sections = _single_report(tmp_path, "cpu")["sections"]
    assert all(section["status"] == "ok" for section in sections.values()), report.sections
    variants = {row[0]: row for row in sections["setup"]["tables"][0]["rows"]}
    assert "fell back to eager: RuntimeError: no C++ compiler" in variants["torch.compile"][2]
    rows = {row[0]: row for row in sections["tricks"]["tables"][0]["rows"]}
    assert rows["eager"][4] == 1.0 and rows["eager"][7] == pytest.approx(1.0) and rows["eager"][-1] == "–"
    assert 0 < rows["eager"][5] < 1e-3  # fp32's own error against float64
    assert rows["bf16 autocast"][-1] == "no"  # changes results by design: never adopted
    assert rows["torch.compile"][5] == rows["eager"][5]  # the fallback is eager itself
    assert rows["torch.compile"][7] == pytest.approx(1.0) and rows["torch.compile"][9] is None  # same path as eager
    assert all(row[-1] == "policy" for name, row in rows.items() if "thread" in name)


def test_folding_batchnorm_keeps_the_classifier_to_fp32_rounding() -> None:
    classifier = load_classifier("cifar10-resnet56", device="cpu")
    folded = fold_batchnorm(classifier)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in classifier.modules())  # the zoo's copy untouched
    images = torch.rand(2, 3, 32, 32)
    assert torch.allclose(folded(images), classifier(images), rtol=1e-4, atol=1e-5)


def test_contention_suite_runs_a_worker_beside_a_busy_neighbour(tmp_path) -> None:
    run_contention_suite(tmp_path, tiny=True, chosen=[Scenario(1, "PASSIVE", True)])
    [table] = _single_report(tmp_path, "contention")["sections"]["runs"]["tables"]
    [row] = table["rows"]
    assert row[0] == "1 run(s) × 1 thread(s), PASSIVE, busy neighbour" and row[1] > 0


def test_real_suite_reports_steps_floor_and_the_apps_estimate(tmp_path) -> None:
    """Tiny sizes; what is checked is that each ratio is the quotient of the numbers printed beside it."""
    assert main(["benchmark", "--suite", "real", "--tiny", "--out", str(tmp_path)]) == 0
    report = _single_report(tmp_path, "real")
    assert [report["sections"][name]["status"] for name in ("step", "estimate")] == ["ok", "ok"]
    [steps] = report["sections"]["step"]["tables"]
    [(size, threads, floor_ms, step_ms, ratio, seconds)] = steps["rows"]
    assert threads == runtime.plan_threads().for_work(16 * 16).threads  # the size's thread count, not all cores
    assert size == 16 and ratio == pytest.approx(step_ms / floor_ms) and seconds > 3 * step_ms / 1000
    [estimates] = report["sections"]["estimate"]["tables"]
    [(size, threads, predicted, measured, quotient)] = estimates["rows"]
    assert quotient == pytest.approx(predicted / measured)
