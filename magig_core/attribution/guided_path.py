"""GIG and MA-GIG: the guided rule walked in pixel space or in an autoencoder's latent space.

One decode, one classifier forward and ONE backward per path point give both the pixel gradient (for the
Riemann sum) and the latent gradient (for the guidance). The latent path is anchored: its first and last
images are the raw baseline and the raw input, so completeness holds against the model's true outputs.
"""

from __future__ import annotations

import torch

from magig_core.attribution.context import MethodInputs
from magig_core.attribution.guided import guided_move
from magig_core.attribution.integrator import PathIntegrator
from magig_core.attribution.model import gradient_pass

SCHEDULES = ("paper", "pair")


def guided_path(
    ctx: MethodInputs,
    space,
    *,
    steps: int,
    fraction: float,
    interpolation: str,
    schedule: str,
) -> PathIntegrator:
    """Walk ``steps`` path points; the guided move after point k targets L1 = L_tot·(1 − (k+1)/D).

    D = steps ("paper": the last segment jumps from 2/steps of the distance to the input) or steps − 1
    ("pair": every segment is guided, as in PAIR's Guided IG). The move after point N−2 would be
    replaced by the exact input, so it is never computed.
    """
    with ctx.phase("encode"):
        start = space.encode(ctx.baseline01)
        end = space.encode(ctx.inputs01)
    shape = start.shape
    rows = ctx.batch_size
    flat_end = end.reshape(rows, -1)
    coords = start.reshape(rows, -1).clone()
    total_l1 = (flat_end - coords).abs().sum(dim=1)
    divisor = steps if schedule == "paper" else steps - 1
    integrator = ctx.path_integrator(steps)
    with ctx.phase("path"), torch.enable_grad():
        for k in range(steps - 1):
            guide = k < steps - 2
            image, result, latent_grad = _point(ctx, space, coords.view(shape), first=k == 0, guide=guide)
            integrator.add(image, result.outputs, result.probs, result.grads[0])
            if guide:
                target = total_l1 * (1 - (k + 1) / divisor)
                with ctx.phase("guided_rule"):
                    coords = guided_move(
                        coords, flat_end, latent_grad.reshape(rows, -1), target,
                        fraction=fraction, interpolation=interpolation,
                    )
            ctx.report(k + 1, steps - 1)
        integrator.add(ctx.inputs, ctx.input_output, ctx.input_probs, None)
    return integrator


def _point(ctx: MethodInputs, space, coords: torch.Tensor, *, first: bool, guide: bool):
    """Image, its gradient pass (pixel gradient first) and, if guiding, the coordinate gradient at one point."""
    if space.is_identity:
        image = coords.detach().requires_grad_(True)
        result = gradient_pass(ctx.model, image, ctx.targets, ctx.objective, [image])
        return image, result, result.grads[0]
    latent_grad = None
    if first:
        # The stored path starts at the raw baseline; guidance still comes from its reconstruction.
        image = ctx.baseline.detach().requires_grad_(True)
        result = gradient_pass(ctx.model, image, ctx.targets, ctx.objective, [image])
        if guide:
            latent = coords.detach().requires_grad_(True)
            latent_grad = gradient_pass(ctx.model, space.decode(latent), ctx.targets, ctx.objective, [latent]).grads[0]
        return image, result, latent_grad
    if guide:
        latent = coords.detach().requires_grad_(True)
        image = space.decode(latent)
        result = gradient_pass(ctx.model, image, ctx.targets, ctx.objective, [image, latent])
        return image, result, result.grads[1]
    with torch.no_grad():
        image = space.decode(coords)
    image.requires_grad_(True)
    result = gradient_pass(ctx.model, image, ctx.targets, ctx.objective, [image])
    return image, result, None
