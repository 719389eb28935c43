"""The benchmark command runs and reports its ratios (tiny models; the speeds themselves are not asserted)."""

from __future__ import annotations

import json
import time

import pytest

from magig_core.cli import main

STEPS, BATCH, REPEATS = 4, 2, 1


def test_benchmark_command_reports_ratios_of_the_timings_it_measured(tmp_path, capsys) -> None:
    """Ratios recomputed from the reported timings (catches an inverted or mislabelled ratio), and the timed
    phases must fit into the wall time measured here (catches milliseconds reported as seconds, or totals
    reported as per-image values)."""
    out = tmp_path / "bench.json"
    started = time.perf_counter()
    assert main(["benchmark", "--tiny", "--size", "16", "--steps", str(STEPS), "--batch", str(BATCH),
                 "--repeats", str(REPEATS), "--json", str(out)]) == 0
    wall = time.perf_counter() - started
    numbers = json.loads(out.read_text())
    single, batched = numbers["seconds_per_image_single"], numbers["seconds_per_image_batched"]
    step, floor = numbers["ma_gig_step_seconds"], numbers["floor_step_seconds"]
    assert numbers["step_ratio"] == pytest.approx(step / floor)
    assert numbers["batch_speedup"] == pytest.approx(single / batched)
    assert BATCH * (single + batched) + BATCH * REPEATS * floor < wall
    assert step * (STEPS - 1) <= single  # the path is part of each image's total
    printed = capsys.readouterr().out
    assert f"| {numbers['step_ratio']:.3f}× |" in printed
    assert f"| {numbers['batch_speedup']:.2f}× |" in printed
