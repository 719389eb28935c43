"""Reconstruction PSNR and the off-manifold curve against values computed by hand."""

from __future__ import annotations

import math
import multiprocessing
import queue
import threading

import pytest
import torch

from magig_core.metrics import PixelRmseDistance, manifold, off_manifold_curve, reconstruction_psnr
from magig_core.metrics.manifold import reconstruct
from tests.conftest import IdentityAutoencoder


class Shrinking:
    """decode(encode(x)) = 0.8 x + 0.1: a known reconstruction error of 0.2 x − 0.1 per element."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images * 2

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return 0.4 * latents + 0.1


def test_reconstruction_psnr_is_ten_log_one_over_the_mse() -> None:
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    expected = [10 * math.log10(1 / float((0.2 * x - 0.1).pow(2).mean())) for x in images.double()]
    torch.testing.assert_close(reconstruction_psnr(Shrinking(), images), torch.tensor(expected, dtype=torch.float64))
    assert torch.isinf(reconstruction_psnr(IdentityAutoencoder(), images)).all()


def test_off_manifold_curve_measures_each_frame_against_its_own_reconstruction() -> None:
    """Catches comparing frames to the input (or to a reconstruction of the input) instead of to their own."""
    frames = torch.rand(2, 5, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    frames[:, 2] = 1.3  # a decoded frame may overshoot: it is clamped to 1 before encoding, as for display
    curve = off_manifold_curve(frames, Shrinking(), PixelRmseDistance(), frame_indices=torch.tensor([0, 3, 5, 8, 9]),
                               num_points=10)
    clamped = frames.clamp(0, 1).double()
    expected = (0.2 * clamped - 0.1).pow(2).flatten(2).mean(2).sqrt()
    torch.testing.assert_close(curve.values, expected)
    torch.testing.assert_close(curve.t, torch.tensor([0, 3, 5, 8, 9], dtype=torch.float64) / 9)
    identity = off_manifold_curve(frames, IdentityAutoencoder(), PixelRmseDistance())
    assert identity.values.abs().max() == 0


def _reconstruct_in(child_results, autoencoder, images) -> None:
    child_results.put(reconstruct(autoencoder, images).numpy())  # a tensor would travel as a handle to the
    # child's shared memory, gone once the child has exited


def test_chunks_spread_over_spare_cores_give_the_same_bits_and_still_work_in_a_forked_child(monkeypatch, vae) -> None:
    """Catches a result that depends on which thread rebuilt a chunk, and a worker forked after the pool ran
    (a ZeroGPU worker): it inherits the pool's queue without its threads, and its first reconstruction would
    wait for ever."""
    images = torch.rand(3 * manifold.CHUNK - 2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # equal threads per pass (last bits), and a core left over per torch thread
    try:
        one_by_one = torch.cat([reconstruct(vae, part) for part in images.split(manifold.CHUNK)])
        monkeypatch.setattr(manifold, "available_cores", lambda: 2)  # so two chunks go at a time
        pooled = reconstruct(vae, images)
        assert any(t.name.startswith("magig-reconstruct") for t in threading.enumerate())
        torch.testing.assert_close(pooled, one_by_one, rtol=0, atol=0)
        fork = multiprocessing.get_context("fork")
        results = fork.Queue()
        child = fork.Process(target=_reconstruct_in, args=(results, vae, images), daemon=True)
        child.start()
        try:
            from_child = results.get(timeout=60)  # read before joining: the array fills the pipe's buffer
        except queue.Empty:
            pytest.fail("the forked child never finished its reconstruction")
        finally:
            child.kill()
        torch.testing.assert_close(torch.from_numpy(from_child), one_by_one, rtol=0, atol=0)
    finally:
        torch.set_num_threads(before)
