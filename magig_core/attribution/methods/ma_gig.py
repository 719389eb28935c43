"""MA-GIG, Manifold-Aligned Guided IG: the guided rule walked in an autoencoder's latent space.

Every path point is decoded, so gradients are taken on plausible images. The path is anchored: its
first and last images are the raw baseline and the raw input, so completeness holds against the
model's true outputs. One decode, one classifier forward and one backward per point give both the
pixel gradient (for the sum) and the latent gradient (for the guidance).
"""

from __future__ import annotations

from dataclasses import dataclass

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.guided import INTERPOLATIONS
from magig_core.attribution.guided_path import SCHEDULES, guided_path
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput
from magig_core.attribution.spaces import LatentSpace


@dataclass(frozen=True)
class MAGIGOptions:
    steps: int = 200  # path points N
    fraction: float = 0.05  # share of latent coordinates moved per inner step
    interpolation: str = "lerp"  # partial moves: "lerp" (the paper's default) or "slerp"
    schedule: str = "paper"

    def __post_init__(self) -> None:
        check.check_steps(self.steps)
        check.check_fraction(self.fraction)
        check.check_choice(self.interpolation, INTERPOLATIONS, "interpolation")
        check.check_choice(self.schedule, SCHEDULES, "schedule")


def run(ctx: MethodInputs, options: MAGIGOptions) -> MethodOutput:
    space = LatentSpace(ctx.model, ctx.autoencoder, ctx.dtype)
    return guided_path(ctx, space, steps=options.steps, fraction=options.fraction,
                       interpolation=options.interpolation, schedule=options.schedule).output()


def cost(options: MAGIGOptions, num_classes: int) -> PassCounts:
    """N−1 decodes with a graph, N−2 decoder backwards, N classifier passes (two at the first point)."""
    n = options.steps
    guided = n > 2  # with two points the path is the raw baseline and the raw input: nothing to decode
    return PassCounts(classifier_forward=n, classifier_backward=n, decoder_forward=n - 1 if guided else 0,
                  decoder_backward=max(n - 2, 0), encoder_forward=2)


SPEC = register(MethodSpec(
    name="ma-gig", label="MA-GIG", hint="guided path in the autoencoder's latent space, decoded",
    color="#d62728", paper_order=8, space="latent", has_path=True, has_frames=True, options=MAGIGOptions,
    run=run, cost=cost, aliases=("magig", "latent-gig"),
    shared_options=frozenset({"steps", "fraction", "interpolation", "schedule"}),
))
