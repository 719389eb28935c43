"""Device and precision choices shared by every loader."""

from __future__ import annotations

import torch

_DTYPE_ALIASES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "float": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
}


def default_device() -> torch.device:
    """CUDA when available, otherwise CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    return default_device() if device is None else torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """fp32 by default; half precision only on GPU, where it is fast and its error is small enough."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPE_ALIASES:
            raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPE_ALIASES)}")
        dtype = _DTYPE_ALIASES[dtype.lower()]
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"unsupported dtype {dtype}; use float32, bfloat16 or float16")
    if dtype != torch.float32 and device.type == "cpu":
        raise ValueError(
            f"{dtype} is only supported on a GPU: half precision on CPU is slow and inaccurate. "
            "Use dtype='fp32' on CPU, or pass device='cuda'."
        )
    return dtype
