"""``demo-table``: the documented command that regenerates the README's demo-world table."""

import argparse
import math

from magig_core.commands import demo_table
from magig_core.demo.table import MethodRow, markdown_table
from magig_core.demo.world import generate


def test_small_table_has_one_row_per_method_and_the_chance_level(tmp_path):
    parser = argparse.ArgumentParser()
    demo_table.build_parser(parser)
    out = tmp_path / "table.md"
    args = parser.parse_args(
        ["--images", "6", "--steps", "4", "--methods", "ig", "agi", "--threads", "1", "--out", str(out)]
    )
    assert demo_table.run(args) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Demo world") and "6 images from seed 2" in lines[0] and "4 steps" in lines[0]
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"Method", "IG", "AGI", "random map (chance)"}
    ig_cells = [c.strip() for c in rows["IG"].split("|")[2:-1]]
    assert len(ig_cells) == 7 and all(math.isfinite(float(c.strip("*"))) for c in ig_cells)
    assert rows["AGI"].split("|")[7].strip() == "–"  # AGI sums many paths: no single baseline to complete


def test_best_value_per_column_is_bold_and_lower_deletion_wins():
    samples = generate(6, seed=2)
    rows = [
        MethodRow("ig", 0.5, 0.5, 0.2, 0.6, 0.3, 0.01, 1.0),
        MethodRow("gig", 0.4, 0.6, 0.1, 0.5, 0.2, float("nan"), 2.0),
    ]
    lines = markdown_table(rows, samples, "header").splitlines()
    ig, gig = lines[4], lines[5]
    assert "**0.5000**" in ig and "**0.6000**" in gig  # energy to IG, pointing game to GIG
    assert "**0.2000**" in gig.split("|")[6]  # deletion: lower is better
    assert gig.split("|")[7].strip() == "–" and ig.split("|")[7].strip() == "0.010"
