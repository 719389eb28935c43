"""Sharding over processes started by ``torchrun``: gloo on CPU, NCCL on GPU, nothing home-made.

Without torchrun's environment (``WORLD_SIZE`` unset or 1) everything runs in-process as rank 0 of 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class ProcessGroup:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device(self, requested: str | None) -> torch.device:
        """Each rank of a GPU run gets its own GPU (``cuda:LOCAL_RANK``) unless one was named explicitly."""
        if requested not in (None, "auto", "cuda"):
            return torch.device(requested)
        if requested == "cuda" or (requested in (None, "auto") and torch.cuda.is_available()):
            return torch.device("cuda", self.local_rank if self.distributed else torch.cuda.current_device())
        return torch.device("cpu")

    def total(self, count: int, device: torch.device) -> int:
        """Sum of ``count`` over all ranks (also a barrier: every rank must have finished its share)."""
        if not self.distributed:
            return count
        value = torch.tensor([count], dtype=torch.int64, device=device)
        dist.all_reduce(value)
        return int(value.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start(device_hint: str | None = None) -> ProcessGroup:
    """Join torchrun's process group when launched by it; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessGroup()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    group = ProcessGroup(rank, world_size, local_rank)
    use_gpu = group.device(device_hint).type == "cuda"
    if use_gpu:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_gpu else "gloo", timeout=timedelta(hours=12))
    return group


def stop(group: ProcessGroup) -> None:
    if group.distributed and dist.is_initialized():
        dist.destroy_process_group()


def shard(num_items: int, group: ProcessGroup) -> list[int]:
    """Round-robin share of item indices for this rank (items are whole batches, so results never depend
    on how many processes ran)."""
    return list(range(group.rank, num_items, group.world_size))
