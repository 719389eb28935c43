"""``python -m magig_core explain`` on files: maps, raw attributions and a summary per image."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

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
    with Image.open(tmp_path / "out" / "star_0_maps.png") as figure:  # input + 2 maps, (2.6·3 + 0.8)″ × 3″
        assert figure.format == "PNG" and figure.size == (round((2.6 * 3 + 0.8) * 150), 3 * 150)
    saved_summary = json.loads((tmp_path / "out" / "star_0_summary.json").read_text())
    summary = saved_summary["methods"]
    assert set(summary) == {"ig", "ma-gig"} and summary["ma-gig"]["config"]["steps"] == 4
    # the bundled real pair by default: its reconstruction PSNR on the input, recomputed here
    from magig_core.images import load_image, to_tensor
    from magig_core.models import load_autoencoder

    autoencoder = load_autoencoder("taef2", device="cpu")
    image = to_tensor(load_image(EXAMPLE).image, (64, 64))
    with torch.no_grad():
        error = (autoencoder.decode(autoencoder.encode(image)).clamp(0, 1) - image).double().pow(2).mean()
    assert saved_summary["reconstruction_psnr_db"] == pytest.approx(10 * math.log10(1 / float(error)), abs=1e-3)
    curves = summary["ma-gig"]["scores"]["curves"]  # 4 path points: all of them are kept as frames
    assert curves["frame_t"] == pytest.approx([0, 1 / 3, 2 / 3, 1]) and len(curves["off_manifold"]) == 4
    with np.load(tmp_path / "out" / "star_0_attributions.npz") as saved:
        assert saved["ig"].shape == (3, 64, 64)
        for method in ("ig", "ma-gig"):  # the saved maps are the ones the summary's residual belongs to
            gap = summary[method]["input_output"] - summary[method]["baseline_output"]
            residual = abs(saved[method].astype(np.float64).sum() - gap)
            stored = summary[method]["scores"]["values"]["completeness_residual"]
            assert residual == pytest.approx(stored, rel=1e-4, abs=1e-6)
            # what the path collected between its 4 shown positions adds up to the saved map
            stretches = saved[f"{method}_contribution_frames"]
            assert stretches.shape == saved[f"{method}_gradient_frames"].shape == (4, 3, 64, 64)
            np.testing.assert_allclose(stretches.sum(axis=0), saved[method], rtol=1e-4, atol=1e-6)
            assert 0 <= summary[method]["t50"] <= 1 and summary[method]["accumulation"][0] == 0


def test_explain_command_reports_stability_and_saves_the_agreement_map(tmp_path) -> None:
    """With --stability 2 the summary's stability_iou is the overlap of the two runs' top-10 % pixels, which
    the saved agreement map also encodes (1 where both runs chose a pixel, 0.5 where one did). Catches the
    option not reaching explain(), the metric not reaching the summary, and a map saved from another run."""
    assert main(["explain", str(EXAMPLE), "--methods", "ig", "--steps", "4", "--stability", "2", "--frames", "2",
                 "--out", str(tmp_path)]) == 0
    values = json.loads((tmp_path / "star_0_summary.json").read_text())["methods"]["ig"]["scores"]["values"]
    with np.load(tmp_path / "star_0_attributions.npz") as saved:
        agreement = saved["ig_agreement"]
    assert agreement.shape == (64, 64) and set(np.unique(agreement)) <= {0.0, 0.5, 1.0}
    assert values["stability_iou"] == pytest.approx((agreement == 1).sum() / (agreement > 0).sum())
    assert -1 <= values["stability_rank"] <= 1
