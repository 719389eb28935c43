"""Evaluation grids: several values per option, one row per value, rows named by what varies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from scipy import stats

from magig_core.cli import main
from magig_core.data.demo import demo_set
from magig_core.evaluation.fidelity import Reconstruction, fidelity_summary, pearson
from magig_core.evaluation.plan import PlanError, build_jobs, parse_grid, parse_per_method
from magig_core.models import load_autoencoder
from tests.test_evaluate_cli import demo_weights as demo_weights

METHODS = ["ma-gig", "ig", "gig", "eig"]


@pytest.mark.parametrize(("text", "option", "expected"), [
    ("ma-gig=0.01,0.05,gig=0.1", "fraction", {"ma-gig": [0.01, 0.05], "gig": [0.1]}),
    ("0.05,0.1", "fraction", {"ma-gig": [0.05, 0.1], "gig": [0.05, 0.1]}),
    ("ma-gig=taef2,taef2-q1", "autoencoder", {"ma-gig": ["taef2", "taef2-q1"]}),
])
def test_grid_values_belong_to_the_last_method_named(text: str, option: str, expected: dict) -> None:
    """Catches a bare value sent to every method, or one method's values leaking into the next."""
    cast = float if option == "fraction" else str
    assert parse_grid(text, option, METHODS, cast) == expected


@pytest.mark.parametrize(("parse", "text", "message"), [
    (parse_grid, "0.1,gig=0.2", "start with method=value"),
    (parse_grid, "gig=0.1,gig=0.2", "twice"),
    (parse_per_method, "ma-gig=0.01,0.05", "one value per method"),
])
def test_ambiguous_grids_are_refused(parse, text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse(text, "fraction", METHODS, float)


def test_one_job_per_combination_named_by_what_varies_with_the_single_runs_hashes() -> None:
    """A grid row must be the very job a single run with that value builds (same settings, same hash, so the
    same records); catches rows that lose a value, share a hash, or are named by options that do not vary."""
    common = {"seed": 0}
    grid = build_jobs(["c"], ["gig", "ma-gig"], common=common, steps={"gig": 8, "ma-gig": 8},
                      fractions={"ma-gig": [0.01, 0.2]}, interpolations={},
                      autoencoders={"ma-gig": ["taef2", "taef2-q1"]})
    assert [j.row for j in grid] == ["gig"] + [f"ma-gig autoencoder={a} fraction={f}"
                                               for a in ("taef2", "taef2-q1") for f in (0.01, 0.2)]
    for job in grid[1:]:
        single = build_jobs(["c"], ["ma-gig"], common=common, steps={"ma-gig": 8},
                            fractions={"ma-gig": job.explain_kwargs["fraction"]}, interpolations={},
                            autoencoders={"ma-gig": job.autoencoder})
        assert single[0].hash == job.hash and single[0].explain_kwargs == job.explain_kwargs
        assert single[0].row == "ma-gig"


def test_pearson_and_its_interval_equal_scipys() -> None:
    """Catches r without centring, a t-based or unclipped interval, or an interval given for three points."""
    xs, ys = [32.0, 30.0, 26.5, 21.2, 15.0, 12.0], [0.3, 0.28, 0.31, 0.2, 0.1, 0.15]
    expected = stats.pearsonr(xs, ys)
    interval = expected.confidence_interval(0.95)
    found = pearson(xs, ys)
    assert found.r == pytest.approx(expected.statistic, abs=1e-12)
    assert (found.low, found.high) == pytest.approx((interval.low, interval.high), abs=1e-12)
    assert pearson(xs[:3], ys[:3]).low is None and pearson([1.0, 1.0], [2.0, 3.0]).r is None


def _run(weights: Path, out: Path, *options: str) -> dict:
    assert main(["evaluate", "--data", "demo", "--limit", "3", "--steps", "6", "--methods", "ma-gig",
                 "--classifier-weights", str(weights), "--autoencoder-weights", str(weights), "--device", "cpu",
                 "--out", str(out), "--no-progress", *options]) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_a_grid_runs_rows_equal_separate_single_runs(demo_weights: Path, tmp_path: Path) -> None:
    """Catches a grid row computed with another row's value (or the default), rows keyed by method so that
    one overwrites the other, and paired differences taken against the wrong row or unpaired images."""
    reference_row = "MA-GIG autoencoder=demo-shapes fraction=0.5"
    grid = _run(demo_weights, tmp_path / "grid", "--fraction", "ma-gig=0.05,0.5", "--autoencoder",
                "ma-gig=demo-shapes,demo-shapes-q2", "--reference-method", reference_row)
    rows = {r["row"]: r for r in grid["results"]}
    assert list(rows) == [f"ma-gig autoencoder={a} fraction={f}" for a in ("demo-shapes", "demo-shapes-q2")
                          for f in (0.05, 0.5)]
    skip = {"row", "seconds_per_image", "paired_reference", "paired_diffid_top1", "paired_diffid_top1_se"}
    for row in rows.values():
        single = _run(demo_weights, tmp_path / row["row"].replace(" ", "_"), "--fraction",
                      str(row["config"]["fraction"]), "--autoencoder", row["config"]["autoencoder"])
        assert {k: v for k, v in single["results"][0].items() if k not in skip} == \
            {k: v for k, v in row.items() if k not in skip}
    reference = rows["ma-gig autoencoder=demo-shapes fraction=0.5"]
    for row in rows.values():
        if row is not reference:
            mine, theirs = row["image_diffid_top1"], reference["image_diffid_top1"]
            differences = [mine[i] - theirs[i] for i in mine]
            assert row["paired_diffid_top1"] == pytest.approx(sum(differences) / len(differences))


@pytest.mark.slow
def test_an_autoencoder_grid_reports_reconstruction_and_its_correlation(demo_weights: Path, tmp_path: Path) -> None:
    """The reconstruction numbers are each autoencoder's own on the evaluated images (computed here by hand), and
    r pairs each row's PSNR with that row's DiffID. Catches PSNR of the mean error, or rows paired with the
    wrong autoencoder."""
    names = ("demo-shapes", "demo-shapes-q0.5", "demo-shapes-q2", "demo-shapes-q8")
    summary = _run(demo_weights, tmp_path / "ladder", "--autoencoder", "ma-gig=" + ",".join(names))
    quality = summary["fidelity"]["reconstruction"]
    images = torch.stack([demo_set(3, size=16).load(i) for i in range(3)])
    for name in names:
        autoencoder = load_autoencoder(name, weights=demo_weights, device="cpu")
        with torch.no_grad():
            rebuilt = autoencoder.decode(autoencoder.encode(images)).clamp(0, 1)
        mse = (rebuilt.double() - images.double()).pow(2).flatten(1).mean(1)
        assert quality[name]["mse"] == pytest.approx(float(mse.mean()), rel=1e-5)
        assert quality[name]["psnr"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-5)
    ladder = summary["fidelity"]["ladders"][0]
    assert ladder["rows"] == [f"ma-gig autoencoder={n}" for n in names] and ladder["correlations"][0]["n"] == 4
    assert "Pearson r(reconstruction PSNR, diffid_top1) over 4 rows" in (tmp_path / "ladder" / "table.md").read_text()


def test_the_correlation_pairs_each_rows_psnr_with_that_rows_diffid() -> None:
    """Catches rows paired with another autoencoder's PSNR, or methods on one autoencoder pooled into a ladder."""
    quality = {name: Reconstruction(name, 3, mse, psnr) for name, mse, psnr in
               [("a", 0.001, 30.0), ("b", 0.01, 20.0), ("c", 0.1, 10.0), ("d", 0.002, 27.0)]}
    diffids = {"a": 0.30, "b": 0.10, "c": 0.12, "d": 0.25}
    results = [{"classifier": "k", "method": "ma-gig", "row": f"ma-gig autoencoder={n}", "diffid_top1": d,
                "config": {"autoencoder": n}} for n, d in diffids.items()]
    results += [{"classifier": "k", "method": "gig", "row": "gig", "diffid_top1": 0.9, "config": {}},
                {"classifier": "k", "method": "eig", "row": "eig", "diffid_top1": 0.0, "config": {"autoencoder": "a"}}]
    fidelity = fidelity_summary(results, quality, "diffid_top1")
    assert [(ladder["method"], ladder["correlations"][0]["n"]) for ladder in fidelity["ladders"]] == [("ma-gig", 4)]
    expected = stats.pearsonr([quality[n].psnr for n in diffids], list(diffids.values())).statistic
    assert fidelity["ladders"][0]["correlations"][0]["r"] == pytest.approx(expected, abs=1e-12)
