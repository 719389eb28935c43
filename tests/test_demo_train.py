"""``demo-train --quick`` runs the whole pipeline (≈6 s) and leaves weights the loaders accept."""

import argparse
import json

import torch

from magig_core.commands import demo_train
from magig_core.demo.models import load_demo_autoencoder, load_demo_classifier
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.demo.world import DATA_VERSION, generate


def test_quick_training_writes_loadable_weights_and_a_valid_card(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    demo_train.build_parser(parser)
    args = parser.parse_args(["--quick", "--out", str(tmp_path), "--threads", "1"])
    assert demo_train.run(args) == 0

    card = json.loads((tmp_path / "card.json").read_text())
    assert card["quick"] is True and card["data_version"] == DATA_VERSION
    assert card["class_names"] == list(CLASS_NAMES)
    assert 0.0 <= card["classifier"]["held_out_accuracy"] <= 1.0
    assert card["autoencoder"]["held_out_psnr_db"] > 0
    assert card["versions"]["torch"] == torch.__version__
    assert card["classifier"]["train_seconds"] > 0 and card["total_seconds"] > 0
    assert not (tmp_path / "index.json").exists()  # --quick writes no gallery

    images = generate(4, seed=2).images
    classifier = load_demo_classifier(tmp_path)
    assert classifier(images).shape == (4, len(CLASS_NAMES))
    autoencoder = load_demo_autoencoder(tmp_path)
    assert autoencoder.decode(autoencoder.encode(images)).shape == images.shape
    assert "held-out accuracy" in capsys.readouterr().out
