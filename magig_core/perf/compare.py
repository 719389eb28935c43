"""How far two attributions of the same images are apart, in numbers that mean something for guided paths.

The guided selection (GIG, MA-GIG) is discontinuous: a last-bit difference in one gradient can swap which
coordinates move first, and from there the two paths differ. Element-wise maxima then say little, so the
relative L2 error and the correlation of the whole maps are reported next to them, and the path-independent
quantity, the classifier's output at the raw input, is compared exactly.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch

from magig_core.attribution.result import Explanation


def difference(candidate: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """max|a−b| / max|b|, ‖a−b‖₂ / ‖b‖₂ and Pearson correlation, over all elements, in float64."""
    a = candidate.detach().double().cpu().flatten()
    b = reference.detach().double().cpu().flatten()
    scale = b.abs().max().clamp_min(1e-300)
    centred_a, centred_b = a - a.mean(), b - b.mean()
    denominator = (centred_a.norm() * centred_b.norm()).clamp_min(1e-300)
    return {
        "max_rel": float((a - b).abs().max() / scale),
        "rel_l2": float((a - b).norm() / b.norm().clamp_min(1e-300)),
        "correlation": float((centred_a * centred_b).sum() / denominator),
    }


def explanation_difference(candidate: Explanation, reference: Explanation) -> dict[str, Any]:
    """``difference`` of the maps plus the exact path-independent gap |F(x) − F'(x)| (max over images)."""
    return {
        **difference(candidate.attributions, reference.attributions),
        "output_gap": float((candidate.input_output.double().cpu() - reference.input_output.double().cpu())
                            .abs().max()),
    }


@contextmanager
def strict_fp32():
    """CUDA convolutions and matmuls in true fp32 (cuDNN convolutions use TF32 by default)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        saved = (conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
        conv.fp32_precision = torch.backends.cuda.matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision = saved
        return
    legacy = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = legacy
