"""``demo-table``: the documented command that regenerates the README's demo-world table."""

import argparse

import torch

from magig_core.attribution.api import explain
from magig_core.commands import demo_table
from magig_core.demo.table import markdown_table
from magig_core.demo.world import generate
from magig_core.metrics.faithfulness import faithfulness
from magig_core.metrics.localization import energy_in_mask, pointing_game
from magig_core.metrics.scored_method import ScoredMethod
from magig_core.metrics.scores import Scores
from magig_core.models.demo_shapes import load_demo_classifier


def _ig_cells(images: int, seed: int, steps: int) -> list[str]:
    """IG's row recomputed from one explain() call and the metric functions: means, DiffID/Insertion/
    Deletion, and the median of |ΣA − ΔF| / |ΔF|, formatted as the table prints them."""
    samples = generate(images, seed)
    classifier = load_demo_classifier()
    result = explain(samples.images, classifier, "ig", targets=samples.labels, steps=steps)
    games = faithfulness(classifier, samples.images, result.attributions, samples.labels)
    relative = result.completeness_residual / (result.input_output - result.baseline_output).abs()
    values = [
        energy_in_mask(result.attributions, samples.masks).mean().item(),
        pointing_game(result.attributions, samples.masks).mean().item(),
        games.diffid,
        games.insertion,
        games.deletion,
    ]
    return [f"{value:.4f}" for value in values] + [f"{torch.median(relative).item():.3f}"]


def test_small_table_has_one_row_per_method_and_the_chance_level(tmp_path):
    """IG's cells equal a recomputation (catches swapped columns, a mean where the median belongs, scores
    of the wrong method or images); the time cell is whole seconds."""
    parser = argparse.ArgumentParser()
    demo_table.build_parser(parser)
    out = tmp_path / "table.md"
    args = parser.parse_args(
        ["--images", "6", "--steps", "4", "--methods", "ig,agi", "--threads", "1", "--out", str(out)]
    )
    assert demo_table.run(args) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Demo world") and "6 images from seed 2" in lines[0] and "4 steps" in lines[0]
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"Method", "IG", "AGI", "random map (chance)"}
    ig_cells = [c.strip().strip("*") for c in rows["IG"].split("|")[2:-1]]
    assert ig_cells[:6] == _ig_cells(images=6, seed=2, steps=4)
    assert ig_cells[6].isdigit()
    assert rows["AGI"].split("|")[7].strip() == "–"  # AGI sums many paths: no single baseline to complete


def _scores(energy: float, pointing: float, diffid: float, insertion: float, deletion: float,
            relative: float) -> Scores:
    values = {"energy_in_mask": energy, "pointing_game": pointing, "diffid_top1": diffid, "insertion_top1": insertion,
              "deletion_top1": deletion, "completeness_relative": relative}
    return Scores(target=0, values=values)


def test_best_value_per_column_is_bold_and_lower_deletion_wins():
    """Catches a column whose best is taken the wrong way (deletion: lower wins) or a NaN residual printed."""
    samples = generate(6, seed=2)
    rows = [
        [ScoredMethod("ig", _scores(0.5, 0.5, 0.2, 0.6, 0.3, 0.01), 1.0)],
        [ScoredMethod("gig", _scores(0.4, 0.6, 0.1, 0.5, 0.2, float("nan")), 2.0)],
    ]
    lines = markdown_table(rows, samples, "header").splitlines()
    ig, gig = lines[4], lines[5]
    assert "**0.5000**" in ig and "**0.6000**" in gig  # energy to IG, pointing game to GIG
    assert "**0.2000**" in gig.split("|")[6]  # deletion: lower is better
    assert gig.split("|")[7].strip() == "–" and ig.split("|")[7].strip() == "0.010"
