"""The fused single-backward walks equal naive re-implementations written straight from the spec."""

from __future__ import annotations

import torch

from magig_core import explain
from tests.conftest import small_cnn


def _naive_guided_latent_path(z_bl, z_in, grad_fn, steps, fraction):
    """One image, one coordinate at a time where it matters: the reference's loop, unvectorized."""
    z = z_bl.clone().flatten()
    end = z_in.flatten()
    total = (end - z).abs().sum()
    path = [z.clone()]
    n = z.numel()
    rank = int(fraction * (n - 1)) + 1
    for k in range(steps - 2):
        g = grad_fn(z.view_as(z_bl)).flatten().abs().clone()
        target = total * (1 - (k + 1) / steps)
        gamma = float("inf")
        while gamma > 1:
            current = (z - end).abs().sum()
            if torch.isclose(current, target, rtol=1e-9, atol=1e-9):
                break
            g[(z - end).abs() < 1e-9] = float("inf")
            tau = torch.sort(g).values[rank - 1]
            chosen = (g <= tau) & torch.isfinite(g)
            l_s = ((z - end).abs() * chosen).sum()
            gamma = float((current - target) / l_s) if l_s > 0 else float("inf")
            if gamma > 1:
                z[chosen] = end[chosen]
            else:
                z[chosen] = z[chosen] + gamma * (end[chosen] - z[chosen])
        path.append(z.clone())
    return [p.view_as(z_bl) for p in path]


def test_fused_ma_gig_equals_naive_two_pass(vae) -> None:
    """Naive: walk the latent path, decode and store every point, then re-run the classifier on it."""
    cnn = small_cnn()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    target = torch.tensor([2])
    steps, fraction = 12, 0.05

    def prob(images):
        return torch.softmax(cnn(images), dim=1)[:, 2].sum()

    def latent_grad(z):
        z = z.detach().requires_grad_(True)
        return torch.autograd.grad(prob(vae.decode(z)), z)[0]

    with torch.no_grad():
        z_in, z_bl = vae.encode(image), vae.encode(torch.zeros_like(image))
    latents = _naive_guided_latent_path(z_bl, z_in, latent_grad, steps, fraction)
    with torch.no_grad():
        stored = [torch.zeros_like(image)] + [vae.decode(z) for z in latents[1:]] + [image]
    attribution = torch.zeros_like(image)
    for k in range(steps - 1):
        point = stored[k].clone().requires_grad_(True)
        attribution += torch.autograd.grad(prob(point), point)[0] * (stored[k + 1] - stored[k])

    fused = explain(image, cnn, "ma-gig", autoencoder=vae, targets=target, steps=steps, fraction=fraction)
    torch.testing.assert_close(fused.attributions, attribution, atol=1e-5, rtol=1e-4)


def _naive_mig_path(decode, z_bl, z_in, steps, learning_rate, iterations, threshold):
    """MIG as the reference runs it: every η decodes its three points afresh, Gauss–Seidel order."""
    dt = 1 / (steps - 1)
    z = [z_bl + (k / (steps - 1)) * (z_in - z_bl) for k in range(steps)]

    def eta(i):
        with torch.no_grad():
            left, right = decode(z[i - 1]), decode(z[i + 1])
        point = z[i].detach().requires_grad_(True)
        image = decode(point)
        return torch.autograd.grad(image, point, grad_outputs=-(right - 2 * image.detach() + left) / dt)[0]

    for _ in range(iterations):
        if sum(eta(i).pow(2).sum() for i in range(1, steps - 1)) < threshold:
            break
        for i in range(1, steps - 1):
            z[i] = z[i] - learning_rate * eta(i)
    with torch.no_grad():
        return [decode(p) for p in z]


def test_cached_mig_equals_naive_reference_sweep(vae) -> None:
    cnn = small_cnn()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    steps, learning_rate = 7, 0.002  # small enough that the descent is stable on this random decoder
    with torch.no_grad():
        z_in, z_bl = vae.encode(image), vae.encode(torch.zeros_like(image))
    path = _naive_mig_path(vae.decode, z_bl, z_in, steps, learning_rate, 2, 0.0)
    ours = explain(image, cnn, "mig", autoencoder=vae, targets=[1], steps=steps, frames=steps,
                   mig_learning_rate=learning_rate, mig_energy_threshold=0.0)
    torch.testing.assert_close(ours.frames[0], torch.cat(path), atol=1e-5, rtol=1e-4)
    straight = explain(image, cnn, "eig", autoencoder=vae, targets=[1], steps=steps, frames=steps)
    assert not torch.allclose(ours.frames, straight.frames, atol=1e-4), "the geodesic must move off the line"


def test_energy_gradient_is_the_gradient_of_the_discrete_path_energy(vae) -> None:
    """η_i = ∂/∂z_i (1/2dt)·Σ‖D(z_{k+1}) − D(z_k)‖², checked by autograd on the energy itself."""
    from magig_core.attribution.geodesic_path import _energy_gradient

    torch.manual_seed(0)
    z = [torch.randn(1, 4, 4, 4) for _ in range(3)]
    dt = 0.5
    with torch.no_grad():
        left, right = vae.decode(z[0]), vae.decode(z[2])
    eta = _energy_gradient(vae.decode, z[1], left, right, dt)
    middle = z[1].clone().requires_grad_(True)
    decoded = vae.decode(middle)
    energy = ((decoded - left).pow(2).sum() + (right - decoded).pow(2).sum()) / (2 * dt)
    torch.testing.assert_close(eta, torch.autograd.grad(energy, middle)[0], atol=1e-5, rtol=1e-4)


def test_jacobi_sweep_is_a_different_documented_algorithm(vae) -> None:
    cnn = small_cnn()
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    kwargs = {"autoencoder": vae, "targets": [1], "steps": 7, "frames": 7, "mig_learning_rate": 0.002,
              "mig_energy_threshold": 0.0}
    gauss_seidel = explain(image, cnn, "mig", **kwargs)
    jacobi = explain(image, cnn, "mig", mig_sweep="jacobi", **kwargs)
    assert jacobi.config["sweep"] == "jacobi"
    assert not torch.allclose(gauss_seidel.frames, jacobi.frames, atol=1e-7)
    torch.testing.assert_close(gauss_seidel.frames, jacobi.frames, atol=2e-2, rtol=0)
