"""Class activation maps through ``pytorch-grad-cam``, at a layer picked per classifier.

The CAM methods are reference points, not path methods: one map of the last convolutional block's
activations, weighted per channel by the target's gradient, ReLU'd, upsampled to the image and scaled to
[0,1] per image (all by the library). The map is spread evenly over the colour channels, so the metrics,
which rank every C×H×W element, rank pixels by it.

A CAM has no scale of its own. So that a shared colour scale compares it with the path methods, the map is
scaled to sum to the output change F_c(input) − F_c(baseline) that their attributions account for; that
makes completeness true by construction and therefore no evidence, so the method reports no path ends
(NaN) and its completeness residuals are NaN ("–" in tables) rather than a flattering zero.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

import torch
from torch import nn

from magig_core.attribution.context import MethodInputs
from magig_core.attribution.model import NormalizedModel
from magig_core.attribution.registry import MethodSpec, PassCounts
from magig_core.attribution.result import MethodOutput
from magig_core.errors import ArgumentError

POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)
_LAYERS: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def target_layer(network: nn.Module, sample: torch.Tensor) -> nn.Module:
    """The last module to finish a forward pass with a 4-D feature map that is not a pooling layer's output.

    ``sample`` only needs the right shape: the probe reads output shapes, not values.

    That is the last convolutional block: ``layer3`` of the CIFAR ResNets, ``layer4`` of torchvision's
    ResNets, the ReLU before VGG's last max-pool, GoogLeNet's ``inception5b``, the demo CNN's
    ``features``. A container that returns its pooling child's output counts as pooling (VGG's
    ``features``), because Grad-CAM there would read a coarser, resampled map. Found once per network.
    """
    if network in _LAYERS:
        return _LAYERS[network]
    finished: list[nn.Module] = []
    pooled: dict[int, torch.Tensor] = {}  # held, so that no id is reused during the probe

    def record(module: nn.Module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor) and output.dim() == 4:
            if isinstance(module, POOLING):
                pooled[id(output)] = output
            elif id(output) not in pooled:
                finished.append(module)

    handles = [m.register_forward_hook(record) for m in network.modules() if m is not network]
    try:
        with torch.no_grad():
            network(sample)
    finally:
        for handle in handles:
            handle.remove()
    if not finished:
        raise ArgumentError(f"{type(network).__name__} has no convolutional feature map for a class activation map")
    _LAYERS[network] = finished[-1]
    return finished[-1]


class _NormalizedForward(nn.Module):
    """The classifier as a module of normalized input, as the library calls it (``model(input_tensor)``).

    Always in full precision: the library turns activations and gradients into float32 NumPy arrays, which
    bf16/fp16 tensors cannot become, and a CAM is one pass, so reduced precision would save nothing.
    """

    def __init__(self, model: NormalizedModel) -> None:
        super().__init__()
        self.network = model.module
        self._model = replace(model, autocast_dtype=None)

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        return self._model.forward(normalized)


def class_activation_map(ctx: MethodInputs, cam_class: type) -> MethodOutput:
    """Run one of the library's CAM classes on the batch; the objective decides logit or softmax target."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

    layer = target_layer(ctx.model.module, ctx.inputs[:1].detach())
    target_type = ClassifierOutputSoftmaxTarget if ctx.objective == "prob" else ClassifierOutputTarget
    targets = [target_type(int(t)) for t in ctx.targets.tolist()]
    modes = {module: module.training for module in ctx.model.module.modules()}
    with ctx.phase("path"), torch.enable_grad():
        cam = cam_class(model=_NormalizedForward(ctx.model), target_layers=[layer])
        try:
            maps = cam(input_tensor=ctx.inputs.detach().clone().requires_grad_(True), targets=targets)
        finally:
            cam.activations_and_grads.release()
            for module, training in modes.items():
                module.train(training)
    heat = torch.from_numpy(maps).to(device=ctx.inputs.device, dtype=ctx.dtype)
    change = ctx.input_output - ctx.baseline_output
    scale = change / heat.flatten(1).sum(1).clamp_min(torch.finfo(heat.dtype).tiny) / ctx.inputs.shape[1]
    nowhere = torch.full_like(change, float("nan"))
    return MethodOutput(
        attributions=(heat * scale.view(-1, 1, 1)).unsqueeze(1).expand_as(ctx.inputs).contiguous(),
        path_probs=ctx.input_probs.unsqueeze(1), path_start_output=nowhere, path_end_output=nowhere,
        details={"cam_layer": _layer_name(ctx.model.module, layer)},
    )


def _layer_name(network: nn.Module, layer: nn.Module) -> str:
    return next((name for name, module in network.named_modules() if module is layer), type(layer).__name__)


@dataclass(frozen=True)
class CAMOptions:
    """A CAM has no hyperparameters; its layer is picked per classifier."""


def _cost(options: CAMOptions, num_classes: int) -> PassCounts:
    """The map's forward and backward, and the forward that finds the target layer (one image per batch)."""
    return PassCounts(classifier_forward=2, classifier_backward=1)


def cam_spec(name: str, label: str, hint: str, color: str, paper_order: float, library_class: str,
             aliases: tuple[str, ...]) -> MethodSpec:
    """The spec of a reference method that is one of ``pytorch_grad_cam``'s classes: no path, no frames."""
    def run(ctx: MethodInputs, options: CAMOptions) -> MethodOutput:
        import pytorch_grad_cam

        return class_activation_map(ctx, getattr(pytorch_grad_cam, library_class))

    return MethodSpec(name=name, label=label, hint=hint, color=color, paper_order=paper_order, space="none",
                      has_path=False, has_frames=False, options=CAMOptions, run=run, cost=_cost,
                      uses_baseline=False, aliases=aliases)
