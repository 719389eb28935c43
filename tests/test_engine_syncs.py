"""The path walks do not make the host wait for the device per point (counted with the torch profiler on CPU).

A host read of a device value (``bool(t)``, ``.item()``, ``float(t)``) shows up as ``aten::_local_scalar_dense``.
On a GPU each one drains the queue, so the straight line and the integrator have none per point, and the
guided walk has exactly one per pass of its data-dependent inner loop (usually one or two per step).
"""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from magig_core.attribution import explain
from tests.test_acceleration import TinyAutoencoder, _classifier


def _host_reads(method: str, steps: int) -> int:
    torch.manual_seed(0)
    images = torch.rand(2, 3, 8, 8)
    options = {"autoencoder": TinyAutoencoder().requires_grad_(False)} if method in ("eig", "ma-gig") else {}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        explain(images, _classifier(), method, steps=steps, **options)
    return sum(event.count for event in prof.key_averages() if event.key == "aten::_local_scalar_dense")


@pytest.mark.parametrize("method", ["ig", "eig"])
def test_straight_paths_read_nothing_back_per_point(method: str) -> None:
    assert _host_reads(method, 24) == _host_reads(method, 8)


@pytest.mark.parametrize("method", ["gig", "ma-gig"])
def test_guided_walks_read_back_a_few_times_per_step(method: str) -> None:
    extra_steps = 16
    per_step = (_host_reads(method, 8 + extra_steps) - _host_reads(method, 8)) / extra_steps
    assert 1 <= per_step <= 3
