"""``demo-train --quick`` runs the whole pipeline (≈6 s) and leaves weights the loaders accept."""

import argparse
import json
import time

import torch

from magig_core.commands import demo_train
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.demo.world import DATA_VERSION, generate
from magig_core.models.demo_shapes import load_demo_autoencoder, load_demo_classifier


def test_quick_training_writes_loadable_weights_and_a_card_that_tells_the_truth(tmp_path, capsys):
    """The card's accuracy and PSNR are recomputed here from the written weights on the held-out images
    (catches a card filled from the wrong model, split or formula), and its timings must add up and fit in
    the wall time this test measured (catches a stopwatch started late, reused, or in other units)."""
    parser = argparse.ArgumentParser()
    demo_train.build_parser(parser)
    args = parser.parse_args(["--quick", "--out", str(tmp_path), "--threads", "1"])
    started = time.perf_counter()
    assert demo_train.run(args) == 0
    wall = time.perf_counter() - started

    card = json.loads((tmp_path / "card.json").read_text())
    assert card["quick"] is True and card["data_version"] == DATA_VERSION
    assert card["class_names"] == list(CLASS_NAMES)
    assert card["versions"]["torch"] == torch.__version__
    assert not (tmp_path / "index.json").exists()  # --quick writes no gallery

    held_out = generate(demo_train.QUICK["eval_size"], demo_train.EVAL_SEED)
    classifier, autoencoder = load_demo_classifier(tmp_path), load_demo_autoencoder(tmp_path)
    with torch.no_grad():
        logits = classifier(held_out.images)
        reconstructions = autoencoder.decode(autoencoder.encode(held_out.images)).clamp(0, 1)
    assert logits.shape == (len(held_out.labels), len(CLASS_NAMES))
    accuracy = (logits.argmax(1) == held_out.labels).double().mean().item()
    mse = (reconstructions - held_out.images).double().square().flatten(1).mean(1)
    psnr = (-10 * torch.log10(mse)).mean().item()
    assert card["classifier"]["held_out_accuracy"] == round(accuracy, 4)
    assert abs(card["autoencoder"]["held_out_psnr_db"] - psnr) <= 0.005 + 1e-4  # the card rounds to 0.01

    parts = card["data_seconds"] + card["classifier"]["train_seconds"] + card["autoencoder"]["train_seconds"]
    assert parts - 0.15 <= card["total_seconds"] <= wall + 0.05  # each stopwatch rounds to 0.1 s
    assert "held-out accuracy" in capsys.readouterr().out
