"""MAR's KL-16 VAE as a diffusers ``AutoencoderKL``, converted from its LDM-format state dict.

diffusers' own routes are unsafe here: ``from_single_file`` loads non-strictly and leaves the 20 encoder
attention tensors of the 16×16 level random, and ``create_vae_diffusers_config_from_ldm`` builds the wrong
architecture. So we build from the shipped config, convert with ``convert_ldm_vae_checkpoint``, map those
attention entries ourselves and insist that every tensor is consumed exactly once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import torch

CONFIG_FILE = "mar_kl16_diffusers_config.json"
_VAE_PREFIXES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
_WRAPPER_PREFIXES = ("first_stage_model.", "vae.")
_ENCODER_ATTENTION = re.compile(r"^encoder\.down\.(\d+)\.attn\.(\d+)\.(norm|q|k|v|proj_out)\.(weight|bias)$")
_ATTENTION_PARTS = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def mar_config() -> dict[str, Any]:
    """The diffusers config of KL-16 (shipped: deriving it from the LDM checkpoint gets it wrong)."""
    text = (resources.files("magig_core.models") / "data" / CONFIG_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _strip_wrapper_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in _WRAPPER_PREFIXES:
        if state_dict and all(key.startswith(prefix) for key in state_dict):
            return {key.removeprefix(prefix): value for key, value in state_dict.items()}
    return dict(state_dict)


def convert_mar_state_dict(
    state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None = None
) -> dict[str, torch.Tensor]:
    """LDM-format KL-16 tensors → diffusers ``AutoencoderKL`` names; raises if any tensor is left over."""
    config = dict(config) if config is not None else mar_config()
    ldm = _strip_wrapper_prefix(state_dict)
    foreign = sorted(key for key in ldm if not key.startswith(_VAE_PREFIXES))
    if foreign:
        raise ValueError(
            f"not a KL-16 VAE state dict: unexpected entries {foreign[:5]} ({len(foreign)} in all)"
        )
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    converted = convert_ldm_vae_checkpoint(ldm, config)
    for key in [key for key in converted if _ENCODER_ATTENTION.match(key)]:
        level, index, part, param = _ENCODER_ATTENTION.match(key).groups()  # type: ignore[union-attr]
        tensor = converted.pop(key)
        if param == "weight" and part != "norm":
            tensor = tensor.reshape(tensor.shape[0], tensor.shape[1])  # 1×1 conv → linear
        converted[f"encoder.down_blocks.{level}.attentions.{index}.{_ATTENTION_PARTS[part]}.{param}"] = tensor
    if len(converted) != len(ldm):
        raise ValueError(
            f"KL-16 conversion consumed {len(converted)} of {len(ldm)} tensors; the checkpoint does not have "
            "the expected LDM layout."
        )
    return converted


def mar_autoencoder_from_state_dict(state_dict: Mapping[str, torch.Tensor]):
    """A strictly loaded KL-16 ``AutoencoderKL`` (fp32; half-precision checkpoints are upcast)."""
    config = mar_config()
    from diffusers import AutoencoderKL

    model = AutoencoderKL.from_config(config)
    converted = convert_mar_state_dict(state_dict, config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        raise ValueError(
            "the checkpoint does not match MAR's KL-16 VAE "
            f"(missing after conversion: {missing[:5]}{' …' if len(missing) > 5 else ''}; "
            f"unexpected: {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}). "
            "Pass MAR's kl16.ckpt or kl16.safetensors."
        )
    wrong_shape = [key for key, value in converted.items() if value.shape != expected[key].shape]
    if wrong_shape:
        raise ValueError(f"the checkpoint does not match MAR's KL-16 VAE: wrong shapes for {wrong_shape[:5]}")
    model.load_state_dict({key: value.float() for key, value in converted.items()}, strict=True)
    return model
