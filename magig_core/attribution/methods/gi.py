"""GI, Gradient × Input: one gradient times the displacement from the baseline, in normalized space."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magig_core.attribution.context import MethodInputs
from magig_core.attribution.model import gradient_pass
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput


@dataclass(frozen=True)
class GIOptions:
    """GI has no hyperparameters."""


def run(ctx: MethodInputs, options: GIOptions) -> MethodOutput:
    """∇F_c(x) ⊙ (x − x_baseline): equal to the raw gradient times the raw image for a black baseline."""
    with ctx.phase("path"), torch.enable_grad():
        point = ctx.inputs.detach().requires_grad_(True)
        result = gradient_pass(ctx.model, point, ctx.targets, ctx.objective, [point])
    return MethodOutput(
        attributions=result.grads[0] * (ctx.inputs - ctx.baseline), path_probs=ctx.input_probs.unsqueeze(1),
        path_start_output=ctx.baseline_output, path_end_output=ctx.input_output,
    )


def cost(options: GIOptions, num_classes: int) -> PassCounts:
    return PassCounts(classifier_forward=1, classifier_backward=1)


SPEC = register(MethodSpec(
    name="gi", label="GI", hint="gradient × input (no path)", color="#7f7f7f", paper_order=1, space="none",
    has_path=False, has_frames=False, options=GIOptions, run=run, cost=cost,
    aliases=("gradient-x-input", "gradient-times-input"),
))
