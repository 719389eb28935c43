"""The bundled demo models: they load offline and still measure what their card says."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from magig_core.demo.example_scenes import DEFAULT_EXAMPLES_DIR, load_examples
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.demo.training import accuracy, black_reconstruction_rmse, psnr
from magig_core.demo.world import DATA_VERSION, generate, render, sample_scenes
from magig_core.models.demo_shapes import (
    DEFAULT_WEIGHTS_DIR,
    build_classifier_network,
    load_demo_autoencoder,
    load_demo_classifier,
    read_card,
)
from magig_core.models.diffusers_autoencoder import DiffusersAutoencoder
from magig_core.models.image_classifier import ImageClassifier
from tests.gradients import assert_decoder_gradient_matches_finite_differences

TEST_SEED = 2  # the card's figures come from seed 1, training from seed 0


@pytest.fixture(scope="module")
def card():
    return read_card()


@pytest.fixture(scope="module")
def classifier():
    return load_demo_classifier()


@pytest.fixture(scope="module")
def autoencoder():
    return load_demo_autoencoder()


def test_card_describes_a_full_run_on_the_current_data(card):
    assert card["data_version"] == DATA_VERSION, "bundled weights are stale: rerun demo-train"
    assert not card["quick"]
    assert card["class_names"] == list(CLASS_NAMES)
    assert card["classifier"]["held_out_accuracy"] >= 0.95
    assert card["seeds"]["held_out_data"] != card["seeds"]["train_data"] != TEST_SEED


def test_classifier_contract(classifier, card):
    assert isinstance(classifier, ImageClassifier)
    assert classifier.class_names == list(CLASS_NAMES)
    assert classifier.input_size == (card["image_size"],) * 2
    assert classifier.representation_module is classifier.network.fc
    assert not classifier.training and not any(p.requires_grad for p in classifier.parameters())


def test_classifier_reaches_its_card_accuracy_on_fresh_images(classifier, card):
    """600 images from an unseen seed; binomial standard error at 97 % is ≈0.7 points."""
    held_out = generate(600, TEST_SEED)
    measured = accuracy(classifier, held_out.images, held_out.labels)
    assert measured >= card["classifier"]["held_out_accuracy"] - 0.025


def test_autoencoder_reaches_its_card_psnr_on_fresh_images(autoencoder, card):
    images = generate(200, TEST_SEED, start=600).images
    assert abs(psnr(autoencoder, images) - card["autoencoder"]["held_out_psnr_db"]) < 0.5


def test_classifier_finds_no_class_in_object_free_scenes(classifier):
    """Outlier exposure: the test seed's scenes rendered without their object. Measured: mean top
    probability 0.235 (highest 0.343; uniform is 0.167) against 0.930 with the object present."""
    scenes = sample_scenes(300, TEST_SEED)
    empty = classifier(render(scenes, draw_object=False).images).softmax(1).amax(1)
    full = classifier(render(scenes).images).softmax(1).amax(1)
    assert empty.mean() < 0.3 and empty.max() < 0.5
    assert full.mean() > 0.85


def test_autoencoder_reconstructs_the_black_baseline_as_its_card_says(autoencoder, card):
    """Every latent path starts at the encoding of black; before the dimmed phase its RMSE was 0.24."""
    rmse = black_reconstruction_rmse(autoencoder, card["image_size"])
    assert rmse == pytest.approx(card["autoencoder"]["black_reconstruction_rmse"], abs=1e-3)
    assert rmse < 0.15


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="pooling"):
        build_classifier_network({"widths": [4], "num_classes": 2, "pooling": "median"})


def test_autoencoder_contract(autoencoder, card):
    assert isinstance(autoencoder, DiffusersAutoencoder) and autoencoder.kind == "kl"
    images = generate(2, TEST_SEED).images
    latents = autoencoder.encode(images)
    size = card["image_size"]
    assert latents.shape == (2, card["autoencoder"]["config"]["latent_channels"], size // 4, size // 4)
    with torch.no_grad():
        assert autoencoder.decode(latents).shape == images.shape
    assert_decoder_gradient_matches_finite_differences(autoencoder, latents)


def test_loaders_work_from_any_directory_and_on_an_explicit_device(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_demo_classifier(device="cpu").mean.device.type == "cpu"
    assert load_demo_autoencoder(DEFAULT_WEIGHTS_DIR, device=torch.device("cpu")).device.type == "cpu"


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="demo-train"):
        load_demo_classifier(tmp_path)
    (tmp_path / "card.json").write_text(json.dumps(read_card()))
    with pytest.raises(FileNotFoundError, match="demo-train"):
        load_demo_autoencoder(tmp_path)


def test_gallery_examples_are_the_generator_s_images_and_masks(classifier):
    entries = load_examples()
    assert sorted({e["class_name"] for e in entries}) == sorted(CLASS_NAMES)
    index = json.loads((DEFAULT_EXAMPLES_DIR / "index.json").read_text())
    regenerated = generate(max(e["sample_index"] for e in entries) + 1, index["seed"], size=index["size"])
    for e in entries:
        image = torch.from_numpy(np.array(Image.open(e["path"]).convert("RGB"))).permute(2, 0, 1) / 255
        mask = torch.from_numpy(np.array(Image.open(e["mask_path"])) > 127)
        k = e["sample_index"]
        assert int(regenerated.labels[k]) == e["label"] == CLASS_NAMES.index(e["class_name"])
        assert torch.equal(mask, regenerated.masks[k])
        assert (image - regenerated.images[k]).abs().max() <= 0.5 / 255 + 1e-6
        assert classifier(image[None]).argmax(1).item() == e["label"]
