"""Evaluation grids: several values per option, one row per value, rows named by what varies."""

from __future__ import annotations

import pytest
from scipy import stats

from magig_core.evaluation.fidelity import pearson
from magig_core.evaluation.plan import PlanError, build_jobs, parse_grid, parse_per_method

METHODS = ["ma-gig", "ig", "gig", "eig"]


def test_grid_values_belong_to_the_last_method_named() -> None:
    """Catches a bare value sent to every method, or one method's values leaking into the next."""
    assert parse_grid("ma-gig=0.01,0.05,gig=0.1", "fraction", METHODS, float) == {"ma-gig": [0.01, 0.05],
                                                                                  "gig": [0.1]}
    assert parse_grid("0.05,0.1", "fraction", METHODS, float) == {"ma-gig": [0.05, 0.1], "gig": [0.05, 0.1]}
    assert parse_grid("ma-gig=taef2,taef2-q1", "autoencoder", METHODS) == {"ma-gig": ["taef2", "taef2-q1"]}
    with pytest.raises(PlanError, match="start with method=value"):
        parse_grid("0.1,gig=0.2", "fraction", METHODS, float)
    with pytest.raises(PlanError, match="twice"):
        parse_grid("gig=0.1,gig=0.2", "fraction", METHODS, float)
    with pytest.raises(PlanError, match="one value per method"):
        parse_per_method("ma-gig=0.01,0.05", "fraction", METHODS, float)


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
