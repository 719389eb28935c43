"""``python -m magig_core explain`` on files: maps, raw attributions and a summary per image."""

from __future__ import annotations

import json

import numpy as np

from magig_core.bundled import bundled_path
from magig_core.cli import main

EXAMPLE = bundled_path("examples", "star_0.png")


def test_explain_command_writes_maps_attributions_and_summary(tmp_path, capsys) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    assert main(["explain", str(EXAMPLE), str(bad), "--methods", "ig,ma-gig", "--steps", "4",
                 "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "skipping" in printed and "broken.png" in printed
    assert (tmp_path / "out" / "star_0_maps.png").stat().st_size > 0
    summary = json.loads((tmp_path / "out" / "star_0_summary.json").read_text())
    assert set(summary) == {"ig", "ma-gig"} and summary["ma-gig"]["config"]["steps"] == 4
    with np.load(tmp_path / "out" / "star_0_attributions.npz") as saved:
        assert saved["ig"].shape == (3, 64, 64)
