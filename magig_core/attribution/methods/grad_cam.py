"""Grad-CAM (Selvaraju et al. 2017) through ``pytorch-grad-cam``: a reference method, not a path method.

Each channel of the last convolutional block is weighted by the target's gradient averaged over
positions; the weighted sum is ReLU'd and upsampled to the image. The paper concedes to it on Insertion.
"""

from __future__ import annotations

from dataclasses import dataclass

from magig_core.attribution.cam import class_activation_map
from magig_core.attribution.context import Context
from magig_core.attribution.registry import MethodSpec, Passes, register
from magig_core.attribution.result import MethodOutput


@dataclass(frozen=True)
class GradCAMOptions:
    """Grad-CAM has no hyperparameters; its layer is picked per classifier."""


def run(ctx: Context, options: GradCAMOptions) -> MethodOutput:
    from pytorch_grad_cam import GradCAM

    return class_activation_map(ctx, GradCAM)


def cost(options: GradCAMOptions, num_classes: int) -> Passes:
    return Passes(classifier_forward=1, classifier_backward=1)


SPEC = register(MethodSpec(
    name="grad-cam", label="Grad-CAM", hint="last conv block's activations × pooled gradients (no path)",
    color="#bcbd22", paper_order=20, space="none", has_path=False, has_frames=False, options=GradCAMOptions,
    run=run, cost=cost, uses_baseline=False, aliases=("gradcam",),
))
