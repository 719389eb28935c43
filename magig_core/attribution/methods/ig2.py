"""IG2 (Zhuo & Ge 2024): a path searched by moving the image's representation towards a reference's.

The representation is the INPUT of the classifier's final linear block. Search and integration need
gradients of two objectives at the same points, so both come from one forward (two backward passes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
from torch import nn

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.integrator import frame_positions
from magig_core.attribution.model import objective_values, target_probabilities
from magig_core.attribution.path_record import PathRecord
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput
from magig_core.errors import ArgumentError


@dataclass(frozen=True)
class IG2Options:
    steps: int = 201  # search steps T (the path has T + 1 points)
    step_size: float = 0.02  # L2 length of every search step, in normalized space

    def __post_init__(self) -> None:
        check.check_steps(self.steps)
        check.check_positive(self.step_size, "ig2_step_size")


def representation_layer(module: nn.Module) -> nn.Module | None:
    """The block whose input is IG2's representation, found as the paper's runs found it.

    A zoo classifier names it (``representation_module``). For a plain module the reference hooks
    ``fc`` (ResNet, GoogLeNet) or the first layer of a Sequential ``classifier`` head (VGG); for any
    other architecture we fall back to the last ``nn.Linear`` in registration order.
    """
    named = getattr(module, "representation_module", None)
    if isinstance(named, nn.Module):
        return named
    fc = getattr(module, "fc", None)
    if isinstance(fc, nn.Module):
        return fc
    head = getattr(module, "classifier", None)
    if isinstance(head, nn.Sequential) and len(head) > 0:
        return head[0]
    if isinstance(head, nn.Module):
        return head
    linear_layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linear_layers[-1] if linear_layers else None


class RepresentationProbe:
    """Captures the input of the classifier's final linear block during this thread's forward passes.

    The hook sits on a shared module: another thread using the same classifier meanwhile (a server
    predicting for another visitor) must not overwrite what this run reads.
    """

    def __init__(self, ctx: MethodInputs) -> None:
        module = representation_layer(ctx.model.module)
        if module is None:
            raise ArgumentError(
                "IG2 needs the classifier's final linear block: give the classifier a "
                "`representation_module` attribute (zoo classifiers have one), an `fc` layer or an nn.Linear head"
            )
        self.value: torch.Tensor | None = None
        self._thread = threading.get_ident()
        self._handle = module.register_forward_pre_hook(self._capture)

    def _capture(self, module, args) -> None:
        if threading.get_ident() == self._thread:
            self.value = args[0].flatten(1)

    def close(self) -> None:
        self._handle.remove()


def reference_bank(ctx: MethodInputs) -> torch.Tensor:
    """The images references are drawn from: the given bank, else the batch itself."""
    if ctx.references01 is None:
        if ctx.batch_size == 1:
            raise ArgumentError(
                "IG2 draws a reference image for each input: with a single image pass references=<[R,3,H,W] "
                "images in [0,1]> (e.g. other images of your dataset)"
            )
        return ctx.inputs01
    if ctx.references01.shape[2:] != ctx.inputs01.shape[2:]:
        raise ArgumentError(f"references must have the images' size {tuple(ctx.inputs01.shape[2:])}; "
                            f"got {tuple(ctx.references01.shape[2:])}")
    return ctx.references01


def run(ctx: MethodInputs, options: IG2Options) -> MethodOutput:
    """Search T steps away from the input, integrate with the gradient at the point nearer the input.

    Each image draws one reference uniformly from the bank (it may draw itself, giving a zero path and
    zero attribution, exactly as the reference implementation does). The path is reported from its
    search end (index 0) to the input (index T).
    """
    bank = reference_bank(ctx)
    steps, rows, model = options.steps, ctx.batch_size, ctx.model
    generator = torch.Generator().manual_seed(ctx.seed)
    probe = RepresentationProbe(ctx)
    try:
        choice = torch.randint(len(bank), (rows,), generator=generator).to(bank.device)
        with torch.no_grad():
            model.forward(model.normalize(bank[choice]))
            reference_representation = probe.value.detach()
        point = ctx.inputs.detach()
        probs: list[torch.Tensor] = []
        frame_indices = frame_positions(steps + 1, ctx.frames)
        record = PathRecord(steps + 1, frame_indices, reverse=True, watch=ctx.watch)
        wanted = set((steps - frame_indices).tolist())
        kept: dict[int, torch.Tensor] = {}
        with ctx.phase("path"), torch.enable_grad():
            for i in range(steps):
                if i in wanted:
                    kept[i] = model.denormalize(point)
                point.requires_grad_(True)
                logits = model.forward(point)
                closeness = -(probe.value - reference_representation).pow(2).mean(dim=1)
                search_grad = torch.autograd.grad(closeness.sum(), point, retain_graph=True)[0]
                values = objective_values(logits, ctx.targets, ctx.objective)
                integration_grad = torch.autograd.grad(values.sum(), point)[0]
                norm = search_grad.flatten(1).norm(dim=1).clamp_min(1e-10).view(rows, 1, 1, 1)
                next_point = point.detach() + options.step_size * search_grad / norm
                record.visit(integration_grad, lambda i=i: kept[i])
                record.collect(integration_grad * (point.detach() - next_point))
                probs.append(target_probabilities(logits, ctx.targets))
                point = next_point
                ctx.report(i + 1, steps)
            logits, end_grad = ctx.endpoint(point, record.needs_gradient(steps))
            probs.append(target_probabilities(logits, ctx.targets))
            if steps in wanted:
                kept[steps] = model.denormalize(point)
            record.visit(end_grad, lambda: kept[steps])
        start_output = objective_values(logits, ctx.targets, ctx.objective)
        recorded = record.finish()
    finally:
        probe.close()
    order = sorted(kept, reverse=True)
    return MethodOutput(
        attributions=recorded.attribution, path_probs=torch.stack(probs[::-1], dim=1),
        path_start_output=start_output,
        path_end_output=ctx.input_output,
        frames=torch.stack([kept[i] for i in order], dim=1) if order else None,
        frame_indices=torch.tensor([steps - i for i in order], dtype=torch.long) if order else None,
        segment_sums=recorded.segment_sums, segment_mass=recorded.segment_mass,
        gradient_frames=recorded.gradient_frames, contribution_frames=recorded.contribution_frames,
        details={"seed": ctx.seed, "reference_bank_size": len(bank)},
    )


def cost(options: IG2Options, num_classes: int) -> PassCounts:
    return PassCounts(classifier_forward=options.steps + 2, classifier_backward=2 * options.steps)


SPEC = register(MethodSpec(
    name="ig2", label="IG2", hint="iterative path by gradient search towards a reference image",
    color="#8c564b", paper_order=3, space="pixels", has_path=True, has_frames=True, options=IG2Options,
    run=run, cost=cost, keyword_prefix="ig2_", uses_baseline=False, draws_references=True,
))
