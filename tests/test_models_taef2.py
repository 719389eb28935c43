"""The bundled TAEF2 autoencoder: exact weights layout, architecture, reconstruction quality and contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from magig_core.data import cifar10_test
from magig_core.models import WeightsUnavailableError, clear_model_cache, load_autoencoder
from magig_core.models.availability import weights_status
from magig_core.models.checkpoints import read_state_dict
from magig_core.models.taef2 import (
    BUNDLED_DIR,
    DECODER_FILE,
    ENCODER_FILE,
    TAEF2Autoencoder,
    build_decoder,
    build_encoder,
)
from magig_core.models.zoo import AUTOENCODERS

SHAPES = json.loads((Path(__file__).parent / "data" / "state_dict_shapes.json").read_text())
# The facts the module was written from, index by index: "conv/2" has stride 2; "up" is nearest ×2.
ENCODER_LAYOUT = [
    "conv",
    "block",
    "conv/2",
    *["block"] * 3,
    "conv/2",
    *["block"] * 3,
    "conv/2",
    *["block"] * 3,
    "conv",
]
DECODER_LAYOUT = [
    "clamp",
    "conv",
    "relu",
    *["block"] * 3,
    "up",
    "conv",
    *["block"] * 3,
    "up",
    "conv",
    *["block"] * 3,
    "up",
    "conv",
    "block",
    "conv",
]


@pytest.fixture(scope="module")
def taef2() -> TAEF2Autoencoder:
    clear_model_cache()
    return load_autoencoder("taef2", device="cpu")


@pytest.fixture(autouse=True)
def _fresh_cache():
    yield
    clear_model_cache()


def _shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in state_dict.items()}


def _reference_forward(weights: dict[str, torch.Tensor], layout: list[str], x: torch.Tensor) -> torch.Tensor:
    """TAEF2 written out with functional ops from the state dict, independently of the module."""

    def conv(prefix: str, h: torch.Tensor, stride: int = 1, padding: int = 1) -> torch.Tensor:
        return F.conv2d(h, weights[f"{prefix}.weight"], weights.get(f"{prefix}.bias"), stride, padding)

    def group_norm(prefix: str, h: torch.Tensor, groups: int = 4) -> torch.Tensor:
        grouped = h.reshape(h.shape[0], groups, -1)
        normed = (grouped - grouped.mean(-1, keepdim=True)) / torch.sqrt(
            grouped.var(-1, unbiased=False, keepdim=True) + 1e-5
        )
        shape = (1, -1, 1, 1)
        return normed.reshape(h.shape) * weights[f"{prefix}.weight"].view(shape) + weights[
            f"{prefix}.bias"
        ].view(shape)

    for index, kind in enumerate(layout):
        if kind == "clamp":
            x = torch.tanh(x / 3) * 3
        elif kind == "relu":
            x = torch.relu(x)
        elif kind == "up":
            x = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
        elif kind.startswith("conv"):
            x = conv(str(index), x, stride=2 if kind == "conv/2" else 1)
        else:
            if f"{index}.pool.0.weight" in weights:
                pooled = conv(f"{index}.pool.0", x, padding=0)
                pooled = torch.relu(group_norm(f"{index}.pool.1", pooled))
                x = x + conv(f"{index}.pool.3", pooled, padding=0)
            h = torch.relu(conv(f"{index}.conv.0", x))
            h = torch.relu(conv(f"{index}.conv.2", h))
            x = torch.relu(conv(f"{index}.conv.4", h) + x)
    return x


def _cifar_batch(per_class: int, size: int = 64) -> torch.Tensor:
    images = cifar10_test(size=size).head(10 * per_class)
    return torch.stack([images.load(i) for i in range(len(images))])


@pytest.mark.parametrize(
    ("filename", "builder"), [(ENCODER_FILE, build_encoder), (DECODER_FILE, build_decoder)]
)
def test_files_and_modules_match_the_recorded_shapes(filename, builder) -> None:
    """Every tensor name and shape, in the file and in the module, equals the reference listing."""
    expected = SHAPES[filename]["tensors"]
    assert _shapes(read_state_dict(BUNDLED_DIR / filename, model="taef2")) == expected
    assert _shapes(builder().state_dict()) == expected
    assert SHAPES[filename]["top_level_keys_besides_state_dict"] == {}


def test_loaded_weights_equal_the_files(taef2) -> None:
    for filename, module in ((ENCODER_FILE, taef2.encoder), (DECODER_FILE, taef2.decoder)):
        stored = read_state_dict(BUNDLED_DIR / filename, model="taef2")
        assert stored["0.weight" if filename == ENCODER_FILE else "1.weight"].dtype == torch.float16
        for name, value in module.state_dict().items():
            assert value.dtype == torch.float32
            torch.testing.assert_close(value, stored[name].float(), rtol=0, atol=0)


def test_modules_match_a_functional_reimplementation_of_the_facts(taef2) -> None:
    """Catches a missing soft clamp, bilinear instead of nearest upsampling, a pool branch applied after
    the convolutions or without its residual, and a wrong stride. The latent is scaled so that the soft
    clamp tanh(z/3)·3 bites."""
    images = _cifar_batch(1)[:2]
    encoder_weights = dict(taef2.encoder.state_dict())
    decoder_weights = dict(taef2.decoder.state_dict())
    latents = taef2.encode(images)
    assert latents.shape == (2, 32, 8, 8)
    torch.testing.assert_close(
        latents, _reference_forward(encoder_weights, ENCODER_LAYOUT, images), rtol=1e-4, atol=1e-4
    )
    far = latents * 3
    assert far.abs().max() > 6  # outside the clamp's linear range
    torch.testing.assert_close(
        taef2.decode(far), _reference_forward(decoder_weights, DECODER_LAYOUT, far), rtol=1e-4, atol=1e-4
    )


def test_reconstruction_psnr_on_cifar_images(taef2) -> None:
    """PSNR of the clamped reconstruction at 64 px on the first 30 bundled CIFAR-10 images (3 per class,
    upsampled 32→64). Measured: 32.05 dB on these, 32.25 dB on all 500 (37.7 dB at 128 px). A wrong
    architecture that still loads (e.g. the pool branch skipped, or bilinear upsampling) falls far below."""
    images = _cifar_batch(3)
    with torch.no_grad():
        decoded = taef2.decode(taef2.encode(images))
    mse = (decoded.clamp(0, 1) - images).pow(2).flatten(1).mean(1)
    psnr = (10 * torch.log10(1 / mse)).mean().item()
    assert psnr > 31.5
    assert decoded.min() < 0 or decoded.max() > 1  # the output is not clamped inside the model


def test_sides_must_be_multiples_of_eight(taef2) -> None:
    with pytest.raises(ValueError, match=r"multiples of 8, got 60×64; resize them"):
        taef2.encode(torch.rand(1, 3, 60, 64))
    assert taef2.encode(torch.rand(1, 3, 16, 24)).shape == (1, 32, 2, 3)


def test_decode_is_differentiable(taef2) -> None:
    """A directional derivative by autograd equals a central finite difference, in float64."""
    decoder = TAEF2Autoencoder(build_encoder(), build_decoder()).double()
    decoder.load_state_dict(taef2.state_dict())
    generator = torch.Generator().manual_seed(0)
    z = (2 * torch.randn(1, 32, 2, 2, generator=generator, dtype=torch.float64)).requires_grad_(True)
    direction = torch.randn(z.shape, generator=generator, dtype=torch.float64)
    weights = torch.randn(1, 3, 16, 16, generator=generator, dtype=torch.float64)

    def objective(latent: torch.Tensor) -> torch.Tensor:
        return (decoder.decode(latent) * weights).sum()

    (gradient,) = torch.autograd.grad(objective(z), z)
    step = 1e-6
    with torch.no_grad():
        numeric = (objective(z + step * direction) - objective(z - step * direction)) / (2 * step)
    analytic = (gradient * direction).sum()
    assert analytic.abs() > 1e-3
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_batch_equals_one_by_one(taef2) -> None:
    images = _cifar_batch(1)[:3]
    latents = taef2.encode(images)
    decoded = taef2.decode(latents)
    for i in range(3):
        torch.testing.assert_close(taef2.encode(images[i : i + 1]), latents[i : i + 1], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(taef2.decode(latents[i : i + 1]), decoded[i : i + 1], rtol=1e-5, atol=1e-5)


def test_contract_frozen_eval_cached(taef2) -> None:
    assert taef2.name == "taef2" and taef2.dtype == torch.float32 and taef2.device == torch.device("cpu")
    assert not any(p.requires_grad for p in taef2.parameters())
    taef2.train()
    assert not any(module.training for module in taef2.modules())
    assert load_autoencoder("taef2", device="cpu") is load_autoencoder("taef2", device="cpu")
    info = AUTOENCODERS["taef2"]
    assert info.latent_shape == (32, 32, 32) and info.cpu_seconds_per_step is not None
    assert "MIT" in info.source and (BUNDLED_DIR / "LICENSE-taesd.txt").is_file()


def _save_halves(folder: Path, encoder: dict, decoder: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(encoder, folder / ENCODER_FILE)
    torch.save(decoder, folder / DECODER_FILE)
    return folder


def test_weights_from_a_local_folder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder, decoder = build_encoder().state_dict(), build_decoder().state_dict()
    folder = _save_halves(tmp_path / "copy", encoder, decoder)
    loaded = load_autoencoder("taef2", weights=folder, device="cpu")
    torch.testing.assert_close(loaded.decoder.state_dict()["19.weight"], decoder["19.weight"])
    torch.testing.assert_close(loaded.encoder.state_dict()["14.bias"], encoder["14.bias"])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda sd: sd.update({"19.weight": torch.zeros(3, 64, 1, 1)}), r"size mismatch for 19\.weight"),
        (lambda sd: sd.pop("3.pool.1.weight"), r'Missing key\(s\).*"3\.pool\.1\.weight"'),
        (lambda sd: sd.update({"20.weight": torch.zeros(1)}), r'Unexpected key\(s\).*"20\.weight"'),
    ],
)
def test_checkpoints_that_do_not_fit_are_refused_clearly(tmp_path: Path, damage, message) -> None:
    decoder = build_decoder().state_dict()
    damage(decoder)
    folder = _save_halves(tmp_path / "bad", build_encoder().state_dict(), decoder)
    with pytest.raises(ValueError, match=f"does not fit taef2's {DECODER_FILE}") as error:
        load_autoencoder("taef2", weights=folder, device="cpu")
    assert error.match(message)


def test_missing_files_name_the_file_and_the_remedy(tmp_path: Path, monkeypatch) -> None:
    torch.save(build_encoder().state_dict(), tmp_path / ENCODER_FILE)
    with pytest.raises(WeightsUnavailableError, match=DECODER_FILE) as error:
        load_autoencoder("taef2", weights=tmp_path, device="cpu")
    assert error.match("folder holding both")
    from magig_core.models import taef2 as taef2_module

    monkeypatch.setattr(taef2_module, "BUNDLED_DIR", tmp_path / "gone")
    reason = weights_status("taef2", "autoencoder")
    assert reason is not None and str(tmp_path / "gone" / ENCODER_FILE) in reason and "reinstall" in reason
    with pytest.raises(WeightsUnavailableError, match="reinstall MA-GIG Explorer"):
        load_autoencoder("taef2", device="cpu")
