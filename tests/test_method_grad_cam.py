"""Grad-CAM and Grad-CAM++ as reference methods: the map, the layer each zoo classifier gets, the channel spread."""

from __future__ import annotations

import pytest
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget
from torch import nn
from torch.nn import functional as F

from magig_core import explain
from magig_core.attribution.cam import target_layer
from magig_core.demo.shapes import CLASS_NAMES
from magig_core.models.cifar10 import AreaResize
from magig_core.models.cifar_resnet import cifar_resnet
from magig_core.models.classifiers import _build_network
from magig_core.models.demo_shapes import CLASSIFIER_LAYOUT, build_classifier_network

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)


def _tiny() -> nn.Sequential:
    """Features at 4×4, then a flattening head: its gradient varies over positions, so pooling it matters."""
    torch.manual_seed(3)
    features = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 6, 3, stride=4, padding=1),
                             nn.ReLU())
    return nn.Sequential(features, nn.Flatten(), nn.Linear(6 * 4 * 4, 4)).eval().requires_grad_(False)


def _hand_grad_cam(model: nn.Sequential, images01: torch.Tensor, targets: list[int], objective: str) -> torch.Tensor:
    """Pooled gradients × activations, summed over channels, ReLU, bilinear upsampling, scaled to [0,1]."""
    normalized = (images01 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    activations = model[0](normalized).detach().requires_grad_(True)
    logits = model[2](model[1](activations))
    chosen = logits.softmax(1) if objective == "prob" else logits
    chosen[torch.arange(len(targets)), targets].sum().backward()
    weights = activations.grad.mean(dim=(2, 3), keepdim=True)
    cam = (weights * activations).sum(1, keepdim=True).clamp(min=0)
    up = F.interpolate(cam, size=images01.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()
    low = up.flatten(1).min(1).values.view(-1, 1, 1)
    high = up.flatten(1).max(1).values.view(-1, 1, 1)
    return (up - low) / (high - low)


def _unit_range(maps: torch.Tensor) -> torch.Tensor:
    """The library's [0,1] scaling, undoing the scale (and sign) that makes a map sum to the output change."""
    maps = maps * maps.flatten(1).sum(1).sign().view(-1, 1, 1)
    low = maps.flatten(1).min(1).values.view(-1, 1, 1)
    return (maps - low) / (maps.flatten(1).max(1).values.view(-1, 1, 1) - low)


class _Normalizing(nn.Module):
    """The network behind its normalization, as ``explain(normalization=...)`` expects a classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return self.model((images01 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1))


@pytest.mark.parametrize("objective", ["prob", "logit"])
def test_grad_cam_equals_a_hand_computation_and_the_library(objective: str) -> None:
    """Catches a wrong layer, the wrong target (per image of a batch), softmax and logit swapped, a missing
    ReLU or upsampling, gradients summed per position instead of pooled, a map not spread evenly over the
    channels or not summing to the output change, and a completeness residual that claims exactness."""
    model = _tiny()
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    targets = [1, 3]
    result = explain(images, _Normalizing(model), "grad-cam", targets=targets, objective=objective,
                     normalization=(MEAN, STD))
    heat = _unit_range(result.attributions.sum(1))
    assert torch.allclose(result.attributions, result.attributions[:, :1].expand_as(result.attributions))
    assert torch.allclose(heat, _hand_grad_cam(model, images, targets, objective), atol=1e-5)
    outputs = _Normalizing(model)(torch.cat([images, torch.zeros_like(images)]))
    outputs = (outputs.softmax(1) if objective == "prob" else outputs)[[0, 1, 2, 3], targets + targets]
    change = outputs[:2] - outputs[2:]
    assert torch.allclose(result.attributions.flatten(1).sum(1), change, rtol=1e-5)
    assert result.completeness_residual.isnan().all()
    target_type = ClassifierOutputSoftmaxTarget if objective == "prob" else ClassifierOutputTarget
    library = GradCAM(model=_Normalizing(model), target_layers=[model[0]])
    expected = library(input_tensor=images.clone().requires_grad_(True), targets=[target_type(t) for t in targets])
    library.activations_and_grads.release()
    assert torch.allclose(heat, torch.from_numpy(expected), atol=1e-6)
    assert result.config["cam_layer"] == "model.0"


def test_grad_cam_plus_plus_is_the_librarys_and_not_grad_cam() -> None:
    """Catches Grad-CAM++ wired to Grad-CAM's class (the head makes their channel weights differ)."""
    model = _tiny()
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    ours = explain(images, _Normalizing(model), "grad-cam++", targets=[2], normalization=(MEAN, STD))
    ours = _unit_range(ours.attributions.sum(1))
    library = GradCAMPlusPlus(model=_Normalizing(model), target_layers=[model[0]])
    expected = library(input_tensor=images.clone().requires_grad_(True), targets=[ClassifierOutputSoftmaxTarget(2)])
    library.activations_and_grads.release()
    assert torch.allclose(ours, torch.from_numpy(expected), atol=1e-6)
    assert not torch.allclose(ours, torch.from_numpy(_hand_grad_cam(model, images, [2], "prob").numpy()), atol=1e-3)


def _named_layer(network: nn.Module, size: int) -> str:
    layer = target_layer(network, torch.empty(1, 3, size, size, device="meta"))
    return next(name for name, module in network.named_modules() if module is layer)


@pytest.mark.parametrize(("build", "size", "expected"), [
    (lambda: _build_network("resnet18", 1000, oxford_vgg_head=False, allocate=False), 64, "layer4"),
    (lambda: _build_network("vgg16", 37, oxford_vgg_head=True, allocate=False), 64, "features.29"),
    (lambda: _build_network("googlenet", 102, oxford_vgg_head=False, allocate=False), 64, "inception5b"),
    (lambda: nn.Sequential(AreaResize(32), cifar_resnet("resnet56").to("meta")), 64, "1.layer3"),
    (lambda: build_classifier_network(CLASSIFIER_LAYOUT | {"num_classes": len(CLASS_NAMES)}).to("meta"), 64,
     "features"),
], ids=["resnet", "vgg", "inception", "cifar-resnet", "demo-cnn"])
def test_each_zoo_classifier_gets_its_last_convolutional_block(build, size: int, expected: str) -> None:
    """Catches the pooled map (VGG's ``features`` returns its max-pool's output), the head, or a stale module
    whose recycled tensor id looked like a pooling output (the VGG layer was once ``features.13``)."""
    assert _named_layer(build().eval(), size) == expected



def test_a_reduced_precision_run_computes_the_map_in_full_precision() -> None:
    """Catches bf16 activations handed to the library, which cannot turn them into NumPy (the GPU check's
    precision section ran every method at bf16 and failed on the CAMs)."""
    model = _tiny()
    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    full = explain(images, _Normalizing(model), "grad-cam", targets=[1], normalization=(MEAN, STD))
    reduced = explain(images, _Normalizing(model), "grad-cam", targets=[1], normalization=(MEAN, STD),
                      precision="bf16")
    assert torch.allclose(_unit_range(reduced.attributions.sum(1)), _unit_range(full.attributions.sum(1)), atol=1e-6)
