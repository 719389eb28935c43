"""Grad-CAM++ (Chattopadhay et al. 2018) through ``pytorch-grad-cam``: a reference method, not a path method.

Like Grad-CAM, but each channel's weight sums only the positive gradients, each scaled by a closed-form
factor from second and third powers of the gradient, so several instances of a class all light up
instead of the strongest one dominating the pooled gradient.
"""

from magig_core.attribution.cam import cam_spec
from magig_core.attribution.registry import register

SPEC = register(cam_spec(
    "grad-cam++", "Grad-CAM++", "Grad-CAM weighted by positive gradients (no path)", "#aec7e8", 21,
    "GradCAMPlusPlus", aliases=("gradcam++", "grad-cam-plus-plus"),
))
