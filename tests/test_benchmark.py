"""The benchmark command runs and reports its ratios (tiny models; the numbers themselves are not asserted)."""

from __future__ import annotations

from magig_core.cli import main


def test_benchmark_command_prints_ratios(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert main(["benchmark", "--tiny", "--size", "16", "--steps", "4", "--batch", "2", "--repeats", "1",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ratio to floor" in printed and "batched vs one-by-one throughput" in printed
    import json

    numbers = json.loads(out.read_text())
    assert numbers["step_ratio"] > 0 and numbers["batch_speedup"] > 0
    assert numbers["floor_step_seconds"] > 0
