"""IG2 (Zhuo & Ge 2024): a path searched by moving the image's representation towards a reference's.

The representation is the INPUT of the classifier's final linear block. Search and integration need
gradients of two objectives at the same points, so both come from one forward (two backward passes).
"""

from __future__ import annotations

import torch

from magig_core.attribution.context import Context
from magig_core.attribution.integrator import frame_positions
from magig_core.attribution.model import last_linear_layer, objective_values, target_probabilities


class RepresentationProbe:
    """Captures the input of the classifier's final linear block during forward passes."""

    def __init__(self, ctx: Context) -> None:
        module = ctx.model.representation_module or last_linear_layer(ctx.model.module)
        if module is None:
            raise ValueError(
                "IG2 needs the classifier's final linear block: give the classifier a "
                "`representation_module` attribute (zoo classifiers have one) or an nn.Linear head"
            )
        self.value: torch.Tensor | None = None
        self._handle = module.register_forward_pre_hook(self._capture)

    def _capture(self, module, args) -> None:
        self.value = args[0].flatten(1)

    def close(self) -> None:
        self._handle.remove()


def ig2_path(
    ctx: Context,
    *,
    steps: int,
    step_size: float,
    references01: torch.Tensor,
    generator: torch.Generator,
    frames: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Returns attribution, path probs (start→input), F at the path start, frames, frame indices.

    Each image draws one reference uniformly from the bank (it may draw itself, giving a zero path and
    zero attribution, exactly as the reference implementation does).
    """
    rows = ctx.batch_size
    model = ctx.model
    probe = RepresentationProbe(ctx)
    try:
        choice = torch.randint(len(references01), (rows,), generator=generator).to(references01.device)
        with torch.no_grad():
            model.forward(model.normalize(references01[choice]))
            reference_representation = probe.value.detach()
        point = ctx.inputs.detach()
        attribution = torch.zeros_like(point)
        probs: list[torch.Tensor] = []
        wanted = set((steps - frame_positions(steps + 1, frames)).tolist())
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
                next_point = point.detach() + step_size * search_grad / norm
                attribution += integration_grad * (point.detach() - next_point)
                probs.append(target_probabilities(logits, ctx.targets))
                point = next_point
                ctx.report(i + 1, steps)
            with torch.no_grad():
                logits = model.forward(point)
            probs.append(target_probabilities(logits, ctx.targets))
            if steps in wanted:
                kept[steps] = model.denormalize(point)
        start_output = objective_values(logits, ctx.targets, ctx.objective)
    finally:
        probe.close()
    order = sorted(kept, reverse=True)
    frame_images = torch.stack([kept[i] for i in order], dim=1) if order else None
    frame_indices = torch.tensor([steps - i for i in order], dtype=torch.long)
    return attribution, torch.stack(probs[::-1], dim=1), start_output, frame_images, frame_indices
