"""AGI (Pan et al. 2021), path-style: FGSM ascent towards several negative classes from the input.

Every (image, negative class) pair is an independent row, so all of them walk together in one batch,
each stopping on its own once the classifier predicts its negative class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput


@dataclass(frozen=True)
class AGIOptions:
    iterations: int = 15  # FGSM steps per negative class at most
    epsilon: float = 0.05  # sign-step size, in normalized space
    negative_classes: int = 10  # requested; the stride rule gives 10 on ImageNet, 12 on Pet, 11 on Flowers

    def __post_init__(self) -> None:
        check.check_nonnegative_int(self.iterations, "agi_iterations")
        check.check_positive(self.epsilon, "agi_epsilon")
        if check.check_nonnegative_int(self.negative_classes, "agi_negative_classes") < 1:
            raise ValueError("agi_negative_classes must be at least 1")


def negative_classes(num_classes: int, requested: int) -> list[int]:
    """0, s, 2s, … strictly below num_classes − 1 with s = max(1, ⌊num_classes / requested⌋)."""
    stride = max(1, num_classes // requested)
    return list(range(0, num_classes - 1, stride))


def run(ctx: MethodInputs, options: AGIOptions) -> MethodOutput:
    """Sum over negative classes and iterations of −∇p_c ⊙ Δv, always on softmax probabilities.

    Many paths, one per negative class, so there is no single path start: its outputs are NaN.
    """
    rows = ctx.batch_size
    negatives = torch.tensor(negative_classes(ctx.num_classes, options.negative_classes), device=ctx.inputs01.device)
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
            done = int(chunk[0])
            contribution = _walk(
                ctx, inputs[image_index[chunk]], adversary[chunk], label[chunk],
                iterations=options.iterations, epsilon=options.epsilon, lower=lower, upper=upper,
                poll=lambda done=done: ctx.report(done, len(pairs)),
            )
            total.index_add_(0, image_index[chunk], contribution)
            ctx.report(int(chunk[-1]) + 1, len(pairs))
    unknown = torch.full_like(ctx.input_output, float("nan"))
    return MethodOutput(attributions=total, path_probs=ctx.input_probs.unsqueeze(1), path_start_output=unknown,
                        path_end_output=unknown)


def _walk(
    ctx: MethodInputs,
    point: torch.Tensor,
    adversary: torch.Tensor,
    label: torch.Tensor,
    *,
    iterations: int,
    epsilon: float,
    lower: torch.Tensor,
    upper: torch.Tensor,
    poll: Callable[[], None],
) -> torch.Tensor:
    """One chunk of adversarial walks; ``poll`` calls the progress callback after every iteration, so a run
    can be cancelled within one step (the progress reported stays at the chunk's start)."""
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
        poll()
    return contribution


def cost(options: AGIOptions, num_classes: int) -> PassCounts:
    """Worst case: every negative class runs all its iterations (one forward, two backward each)."""
    walks = len(negative_classes(num_classes, options.negative_classes)) * options.iterations
    return PassCounts(classifier_forward=walks, classifier_backward=2 * walks)


SPEC = register(MethodSpec(
    name="agi", label="AGI", hint="adversarial ascent paths towards other classes", color="#e377c2",
    paper_order=4, space="pixels", has_path=False, has_frames=False, options=AGIOptions, run=run, cost=cost,
    keyword_prefix="agi_", uses_baseline=False,
))
