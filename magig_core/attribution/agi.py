"""AGI (Pan et al. 2021), path-style: FGSM ascent towards several negative classes from the input.

Every (image, negative class) pair is an independent row, so all of them walk together in one batch,
each stopping on its own once the classifier predicts its negative class.
"""

from __future__ import annotations

import torch

from magig_core.attribution.context import Context


def negative_classes(num_classes: int, requested: int) -> list[int]:
    """0, s, 2s, … strictly below num_classes − 1 with s = max(1, ⌊num_classes / requested⌋)."""
    stride = max(1, num_classes // requested)
    return list(range(0, num_classes - 1, stride))


def agi_attribution(ctx: Context, *, iterations: int, epsilon: float, num_negative: int, num_classes: int) -> torch.Tensor:
    """Sum over negative classes and iterations of −∇p_c ⊙ Δv, always on softmax probabilities."""
    rows = ctx.batch_size
    negatives = torch.tensor(negative_classes(num_classes, num_negative), device=ctx.inputs01.device)
    per_image = len(negatives)
    image_index = torch.arange(rows, device=negatives.device).repeat_interleave(per_image)
    adversary = negatives.repeat(rows)
    label = ctx.targets[image_index]
    lower = ctx.model.normalize(torch.zeros_like(ctx.inputs01[:1]))
    upper = ctx.model.normalize(torch.ones_like(ctx.inputs01[:1]))
    inputs = ctx.inputs.detach()
    total = torch.zeros_like(inputs)
    pairs = torch.arange(len(image_index), device=negatives.device)
    with ctx.phase("path"), torch.enable_grad():
        for chunk in pairs.split(ctx.chunk_rows):
            contribution = _walk(
                ctx, inputs[image_index[chunk]], adversary[chunk], label[chunk],
                iterations=iterations, epsilon=epsilon, lower=lower, upper=upper,
            )
            total.index_add_(0, image_index[chunk], contribution)
            ctx.report(int(chunk[-1]) + 1, len(pairs))
    return total


def _walk(
    ctx: Context,
    point: torch.Tensor,
    adversary: torch.Tensor,
    label: torch.Tensor,
    *,
    iterations: int,
    epsilon: float,
    lower: torch.Tensor,
    upper: torch.Tensor,
) -> torch.Tensor:
    active = adversary != label
    contribution = torch.zeros_like(point)
    for _ in range(iterations):
        point = point.detach().requires_grad_(True)
        logits = ctx.model.forward(point)
        active = active & (logits.argmax(dim=1) != adversary)
        if not bool(active.any()):
            break
        probs = torch.softmax(logits, dim=1)
        adversary_grad = torch.autograd.grad(
            probs.gather(1, adversary.view(-1, 1)).sum(), point, retain_graph=True
        )[0]
        label_grad = torch.autograd.grad(probs.gather(1, label.view(-1, 1)).sum(), point)[0]
        stepped = torch.minimum(torch.maximum(point.detach() + epsilon * adversary_grad.sign(), lower), upper)
        mask = active.view(-1, 1, 1, 1)
        step = torch.where(mask, stepped - point.detach(), torch.zeros_like(stepped))
        contribution = contribution - label_grad * step
        point = point.detach() + step
    return contribution
