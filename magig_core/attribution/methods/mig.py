"""MIG, Manifold IG: a latent geodesic found by descending the decoded path's energy, then integrated.

Starts from EIG's straight latent line; the paper's runs used learning rate 5e-5, 2 iterations and an
energy threshold of 1000, with a sequential (Gauss–Seidel) sweep. Endpoints are reconstructions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magig_core.attribution import validation as check
from magig_core.attribution.context import MethodInputs
from magig_core.attribution.geodesic_path import SWEEPS, geodesic_images
from magig_core.attribution.registry import MethodSpec, PassCounts, register
from magig_core.attribution.result import MethodOutput
from magig_core.attribution.spaces import LatentSpace
from magig_core.attribution.straight_path import integrate_points


@dataclass(frozen=True)
class MIGOptions:
    steps: int = 200  # path points T
    learning_rate: float = 5e-5
    iterations: int = 2  # energy-descent sweeps at most
    energy_threshold: float = 1000.0  # an image stops descending once its energy falls below this
    sweep: str = "gauss-seidel"  # the reference's sequential update; "jacobi" is a parallel variant

    def __post_init__(self) -> None:
        check.check_steps(self.steps)
        check.check_positive(self.learning_rate, "mig_learning_rate")
        check.check_nonnegative_int(self.iterations, "mig_iterations")
        check.check_choice(self.sweep, SWEEPS, "mig_sweep")
        if isinstance(self.energy_threshold, bool) or not isinstance(self.energy_threshold, (int, float)) \
                or not self.energy_threshold >= 0:
            raise ValueError(f"mig_energy_threshold must be a non-negative number; got {self.energy_threshold!r}")


def run(ctx: MethodInputs, options: MIGOptions) -> MethodOutput:
    space = LatentSpace(ctx.model, ctx.autoencoder, ctx.dtype)
    images = geodesic_images(
        ctx, space, steps=options.steps, learning_rate=options.learning_rate, iterations=options.iterations,
        energy_threshold=options.energy_threshold, sweep=options.sweep,
    )
    with ctx.phase("integrate"):
        integrator = integrate_points(ctx, options.steps, lambda indices: torch.stack([images[i] for i in indices]))
    return integrator.output()


def cost(options: MIGOptions, num_classes: int) -> PassCounts:
    """Cached decodes. Per sweep: the energy check decodes every interior point with a graph and runs its
    VJP; Gauss–Seidel then re-derives each point's η (forward + VJP) and decodes the moved point, Jacobi
    only decodes the moved points (it reuses the check's η). At most ``iterations`` sweeps."""
    n, interior, sweeps = options.steps, options.steps - 2, options.iterations
    forwards, backwards = (3, 2) if options.sweep == "gauss-seidel" else (2, 1)
    return PassCounts(
        classifier_forward=n, classifier_backward=n, encoder_forward=2,
        decoder_forward=n + sweeps * forwards * interior, decoder_backward=sweeps * backwards * interior,
    )


SPEC = register(MethodSpec(
    name="mig", label="MIG", hint="latent geodesic, decoded (slow)", color="#9467bd", paper_order=6,
    space="latent", has_path=True, has_frames=True, options=MIGOptions, run=run, cost=cost,
    aliases=("manifold-ig",), shared_options=frozenset({"steps"}), keyword_prefix="mig_",
))
