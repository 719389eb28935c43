"""MAR KL-16: LDM state dict → diffusers AutoencoderKL, strict, every tensor consumed exactly once.

A random full-size state dict is built from the recorded shapes (float16 to halve the disk and memory
cost; the loader upcasts) and saved in both formats MAR ships.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torch.nn.functional as F

from magig_core.models import clear_model_cache, convert_mar_state_dict, load_autoencoder
from magig_core.models.mar import mar_autoencoder_from_state_dict
from tests.gradients import assert_decoder_gradient_matches_finite_differences
from tests.test_models_autoencoders import fake_hub_snapshot

DATA = Path(__file__).parent / "data"
SHAPES = json.loads((DATA / "mar_kl16_state_dict_shapes.json").read_text())
CONFIG = json.loads((DATA / "mar_kl16_diffusers_config.json").read_text())


@pytest.fixture(scope="module")
def ldm_state_dict() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {key: torch.randn(shape, generator=generator).half() for key, shape in SHAPES.items()}


@pytest.fixture(scope="module")
def checkpoint_files(ldm_state_dict, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mar")
    files = {"ckpt": folder / "kl16.ckpt", "safetensors": folder / "kl16.safetensors"}
    torch.save({"model": ldm_state_dict}, files["ckpt"])
    safetensors.torch.save_file(ldm_state_dict, str(files["safetensors"]))
    return files


UP_BLOCKS = 5  # LDM numbers decoder levels from the lowest resolution up, diffusers from the top down
ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
RESNET = {"nin_shortcut": "conv_shortcut"} | {name: name for name in ("norm1", "conv1", "norm2", "conv2")}
NAME_RULES = [  # LDM pattern → diffusers name; conv_in, conv_out, quant_conv, post_quant_conv keep theirs
    (r"^(encoder|decoder)\.norm_out\.", lambda m: f"{m[1]}.conv_norm_out."),
    (r"^(encoder|decoder)\.mid\.block_(\d)\.", lambda m: f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}."),
    (
        r"^(encoder|decoder)\.mid\.attn_1\.(\w+)\.",
        lambda m: f"{m[1]}.mid_block.attentions.0.{ATTENTION[m[2]]}.",
    ),
    (
        r"^encoder\.down\.(\d)\.attn\.(\d)\.(\w+)\.",
        lambda m: f"encoder.down_blocks.{m[1]}.attentions.{m[2]}.{ATTENTION[m[3]]}.",
    ),
    (
        r"^encoder\.down\.(\d)\.block\.(\d)\.(\w+)\.",
        lambda m: f"encoder.down_blocks.{m[1]}.resnets.{m[2]}.{RESNET[m[3]]}.",
    ),
    (r"^encoder\.down\.(\d)\.downsample\.", lambda m: f"encoder.down_blocks.{m[1]}.downsamplers.0."),
    (
        r"^decoder\.up\.(\d)\.block\.(\d)\.(\w+)\.",
        lambda m: f"decoder.up_blocks.{UP_BLOCKS - 1 - int(m[1])}.resnets.{m[2]}.{RESNET[m[3]]}.",
    ),
    (
        r"^decoder\.up\.(\d)\.upsample\.",
        lambda m: f"decoder.up_blocks.{UP_BLOCKS - 1 - int(m[1])}.upsamplers.0.",
    ),
]


def diffusers_name(ldm: str) -> str:
    """Where an LDM KL-16 tensor belongs in diffusers' AutoencoderKL, written from the two architectures
    (not from the converter under test): resnets, attention, samplers, the reversed decoder levels."""
    for pattern, replacement in NAME_RULES:
        name, count = re.subn(pattern, replacement, ldm)
        if count:
            return name
    return ldm


def assert_each_tensor_where_it_belongs(
    actual: dict[str, torch.Tensor], ldm: dict[str, torch.Tensor]
) -> None:
    """Every diffusers entry holds exactly the values of the LDM tensor that belongs there (1×1 attention
    convs flattened to linears). The random tensors all differ, so two same-shaped tensors swapped, or a
    decoder level taken from the wrong end, fail here; a sorted list of per-tensor sums would not notice."""
    expected = {diffusers_name(key): tensor.float().flatten() for key, tensor in ldm.items()}
    assert sorted(actual) == sorted(expected)
    misplaced = [key for key, values in expected.items() if not torch.equal(actual[key].flatten(), values)]
    assert not misplaced, f"{len(misplaced)} tensors hold another tensor's values, e.g. {misplaced[:3]}"


def test_fixture_is_the_full_kl16() -> None:
    assert len(SHAPES) == 312
    assert sum(math.prod(shape) for shape in SHAPES.values()) == 66_456_019


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
def test_mar_loads_strictly_from_both_checkpoint_formats(fmt: str, checkpoint_files, ldm_state_dict) -> None:
    clear_model_cache()
    autoencoder = load_autoencoder("mar", weights=checkpoint_files[fmt], device="cpu")
    model = autoencoder.model
    assert autoencoder.kind == "kl"
    assert {k: v for k, v in model.config.items() if not k.startswith("_")} == {
        k: v for k, v in CONFIG.items() if not k.startswith("_")
    }
    assert_each_tensor_where_it_belongs(model.state_dict(), ldm_state_dict)

    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latents = autoencoder.encode(images)
    assert latents.shape == (1, 16, 2, 2)
    with torch.no_grad():
        assert autoencoder.decode(latents).shape == images.shape
    assert_decoder_gradient_matches_finite_differences(autoencoder, latents)
    clear_model_cache()


def test_conversion_puts_every_tensor_where_it_belongs(ldm_state_dict) -> None:
    assert_each_tensor_where_it_belongs(convert_mar_state_dict(ldm_state_dict), ldm_state_dict)


def test_a_swap_of_two_same_shaped_tensors_is_caught(ldm_state_dict) -> None:
    """The check above against the mistake it exists for: query and key of one attention exchanged."""
    converted = convert_mar_state_dict(ldm_state_dict)
    q, k = (f"decoder.mid_block.attentions.0.{name}.weight" for name in ("to_q", "to_k"))
    assert converted[q].shape == converted[k].shape
    converted[q], converted[k] = converted[k], converted[q]
    with pytest.raises(AssertionError, match="2 tensors hold another tensor's values"):
        assert_each_tensor_where_it_belongs(converted, ldm_state_dict)


def test_encoder_attention_mapping_reproduces_ldm_attention(ldm_state_dict) -> None:
    """The 20 entries diffusers' converter skips: compare with LDM's AttnBlock written out by hand."""
    model = mar_autoencoder_from_state_dict(ldm_state_dict)
    for index in range(2):
        prefix = f"encoder.down.4.attn.{index}."
        p = {
            name: ldm_state_dict[prefix + name].float()
            for name in (
                "norm.weight",
                "norm.bias",
                "q.weight",
                "q.bias",
                "k.weight",
                "k.bias",
                "v.weight",
                "v.bias",
                "proj_out.weight",
                "proj_out.bias",
            )
        }
        x = torch.randn(1, 512, 3, 3, generator=torch.Generator().manual_seed(index))
        h = F.group_norm(x, 32, p["norm.weight"], p["norm.bias"], eps=1e-6)
        q, k, v = (F.conv2d(h, p[f"{n}.weight"], p[f"{n}.bias"]).flatten(2) for n in "qkv")
        weights = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(512), dim=-1)  # [B, HW(q), HW(k)]
        attended = (v @ weights.transpose(1, 2)).view_as(x)
        expected = x + F.conv2d(attended, p["proj_out.weight"], p["proj_out.bias"])
        with torch.no_grad():
            actual = model.encoder.down_blocks[4].attentions[index](x)
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-3)


def test_missing_attention_entry_fails_loudly(ldm_state_dict) -> None:
    broken = dict(ldm_state_dict)
    del broken["encoder.down.4.attn.1.k.weight"]
    with pytest.raises(ValueError, match=r"encoder\.down_blocks\.4\.attentions\.1\.to_k\.weight"):
        mar_autoencoder_from_state_dict(broken)


def test_foreign_entries_are_rejected(ldm_state_dict) -> None:
    extra = {**ldm_state_dict, "loss.logvar": torch.zeros(())}
    with pytest.raises(ValueError, match=r"loss\.logvar"):
        convert_mar_state_dict(extra)


def test_default_source_is_the_hub_safetensors(checkpoint_files, tmp_path, monkeypatch) -> None:
    import huggingface_hub

    cache = tmp_path / "hub"
    fake_hub_snapshot(cache, "jadechoghari/mar", {"kl16.safetensors": checkpoint_files["safetensors"]})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clear_model_cache()
    autoencoder = load_autoencoder("mar", device="cpu")
    assert autoencoder.model.encoder.down_blocks[4].attentions[0].to_q.weight.shape == (512, 512)
    clear_model_cache()
