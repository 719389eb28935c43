"""Grad-CAM++ (Chattopadhay et al. 2018) through ``pytorch-grad-cam``: a reference method, not a path method.

Like Grad-CAM, but each channel's weight sums only the positive gradients, each scaled by a closed-form
factor from second and third powers of the gradient, so several instances of a class all light up
instead of the strongest one dominating the pooled gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from magig_core.attribution.cam import class_activation_map
from magig_core.attribution.context import Context
from magig_core.attribution.registry import MethodSpec, Passes, register
from magig_core.attribution.result import MethodOutput


@dataclass(frozen=True)
class GradCAMPlusPlusOptions:
    """Grad-CAM++ has no hyperparameters; its layer is picked per classifier, as Grad-CAM's."""


def run(ctx: Context, options: GradCAMPlusPlusOptions) -> MethodOutput:
    from pytorch_grad_cam import GradCAMPlusPlus

    return class_activation_map(ctx, GradCAMPlusPlus)


def cost(options: GradCAMPlusPlusOptions, num_classes: int) -> Passes:
    return Passes(classifier_forward=1, classifier_backward=1)


SPEC = register(MethodSpec(
    name="grad-cam++", label="Grad-CAM++", hint="Grad-CAM weighted by positive gradients (no path)",
    color="#aec7e8", paper_order=21, space="none", has_path=False, has_frames=False,
    options=GradCAMPlusPlusOptions, run=run, cost=cost, uses_baseline=False,
    aliases=("gradcam++", "grad-cam-plus-plus"),
))
