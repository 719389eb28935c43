"""GIG, Guided Integrated Gradients as the paper runs it: the guided rule walked in normalized pixels.

Unbounded (no straight-line anchors); the lowest-|gradient| elements move first. MA-GIG is the same rule
in an autoencoder's latent space.
"""

from __future__ import annotations

from dataclasses import dataclass

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.guided_path import SCHEDULES, guided_path
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput
from magig_core.attribution.spaces import PixelSpace


@dataclass(frozen=True)
class GIGOptions:
    steps: int = 200  # path points N
    fraction: float = 0.1  # share of elements moved per inner step (the φ-quantile of |gradient|)
    schedule: str = "paper"  # "paper" (the tables' L1 schedule) or "pair" (PAIR's Guided IG schedule)

    def __post_init__(self) -> None:
        check.check_steps(self.steps)
        check.check_fraction(self.fraction)
        check.check_choice(self.schedule, SCHEDULES, "schedule")


def run(ctx: MethodInputs, options: GIGOptions) -> MethodOutput:
    return guided_path(ctx, PixelSpace(ctx.model), steps=options.steps, fraction=options.fraction,
                       interpolation="lerp", schedule=options.schedule).output()


def cost(options: GIGOptions, num_classes: int) -> PassCounts:
    return PassCounts(classifier_forward=options.steps - 1, classifier_backward=options.steps - 1)


SPEC = register(MethodSpec(
    name="gig", label="GIG", hint="guided path in pixel space", color="#1f77b4", paper_order=7,
    space="pixels", has_path=True, has_frames=True, options=GIGOptions, run=run, cost=cost,
    aliases=("guided-ig", "guidedig"), shared_options=frozenset({"steps", "fraction", "schedule"}),
))
