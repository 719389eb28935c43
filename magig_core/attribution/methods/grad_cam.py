"""Grad-CAM (Selvaraju et al. 2017) through ``pytorch-grad-cam``: a reference method, not a path method.

Each channel of the last convolutional block is weighted by the target's gradient averaged over
positions; the weighted sum is ReLU'd and upsampled to the image. The paper concedes Insertion to it.
"""

from magig_core.attribution.cam import cam_spec
from magig_core.attribution.registry import register

SPEC = register(cam_spec(
    "grad-cam", "Grad-CAM", "last conv block's activations × pooled gradients (no path)", "#bcbd22", 20,
    "GradCAM", aliases=("gradcam",),
))
