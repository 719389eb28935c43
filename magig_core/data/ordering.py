"""The image orders and splits the paper's evaluation sets were drawn with (docs/methods.md §6)."""

from __future__ import annotations

import math

import numpy as np
import torch


def paper_shuffle_order(num_images: int, seed: int = 42) -> list[int]:
    """The order a ``DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed))`` visits.

    Creating the loader's iterator first draws one int64 from the generator (the worker base seed); only
    then does its ``RandomSampler`` draw ``randperm``. The ImageNet subset is the head of this order.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return torch.randperm(num_images, generator=generator).tolist()


def train_test_indices(
    num_images: int, test_size: float = 0.05, random_state: int = 42
) -> tuple[list[int], list[int]]:
    """scikit-learn's ``train_test_split(range(n), test_size=test_size, random_state=random_state)``.

    scikit-learn draws ``RandomState(random_state).permutation(n)``; the first ⌈test_size·n⌉ entries are
    the test part and the rest the training part, both in permutation order (unsorted). The Oxford-IIIT
    Pet evaluation set is that test list.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must lie strictly between 0 and 1, not {test_size}")
    num_test = math.ceil(test_size * num_images)
    if num_test == 0 or num_test >= num_images:
        raise ValueError(f"a {test_size} split of {num_images} images leaves one side empty")
    permutation = np.random.RandomState(random_state).permutation(num_images).tolist()
    return permutation[num_test:], permutation[:num_test]
