"""IG, Integrated Gradients: the straight line from the black baseline to the input, in normalized pixels."""

from __future__ import annotations

from dataclasses import dataclass

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput
from magig_core.attribution.spaces import PixelSpace
from magig_core.attribution.straight_path import straight_path


@dataclass(frozen=True)
class IGOptions:
    steps: int = 200  # path points N, both ends included

    def __post_init__(self) -> None:
        check.check_steps(self.steps)


def run(ctx: MethodInputs, options: IGOptions) -> MethodOutput:
    return straight_path(ctx, PixelSpace(ctx.model), steps=options.steps, interpolation="lerp").output()


def cost(options: IGOptions, num_classes: int) -> PassCounts:
    return PassCounts(classifier_forward=options.steps, classifier_backward=options.steps)


SPEC = register(MethodSpec(
    name="ig", label="IG", hint="straight line in pixel space", color="#ff7f0e", paper_order=2, space="pixels",
    has_path=True, has_frames=True, options=IGOptions, run=run, cost=cost,
    aliases=("integrated-gradients",), shared_options=frozenset({"steps"}),
))
