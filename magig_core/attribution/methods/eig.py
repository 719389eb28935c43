"""EIG, Enhanced IG: the straight line between the latents of baseline and input, decoded at every point.

The endpoints are reconstructions D(E(x')) and D(E(x)), as in the paper's runs (not anchored to the raw
images), so the path residual and the completeness residual differ by the reconstructions' effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.guided import INTERPOLATIONS
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput
from magig_core.attribution.spaces import LatentSpace
from magig_core.attribution.straight_path import straight_path


@dataclass(frozen=True)
class EIGOptions:
    steps: int = 200  # path points N
    interpolation: str = "lerp"  # the paper's EIG is always linear; "slerp" must be asked for by name

    def __post_init__(self) -> None:
        check.check_steps(self.steps)
        check.check_choice(self.interpolation, INTERPOLATIONS, "interpolation")


def run(ctx: MethodInputs, options: EIGOptions) -> MethodOutput:
    space = LatentSpace(ctx.model, ctx.autoencoder, ctx.dtype)
    return straight_path(ctx, space, steps=options.steps, interpolation=options.interpolation).output()


def cost(options: EIGOptions, num_classes: int) -> PassCounts:
    n = options.steps
    return PassCounts(classifier_forward=n, classifier_backward=n, decoder_forward=n, encoder_forward=2)


SPEC = register(MethodSpec(
    name="eig", label="EIG", hint="straight line in latent space, decoded", color="#2ca02c", paper_order=5,
    space="latent", has_path=True, has_frames=True, options=EIGOptions, run=run, cost=cost,
    aliases=("enhanced-ig",), shared_options=frozenset({"steps"}),
))
