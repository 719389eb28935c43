"""Localization scores on hand-built maps whose right answer is known by construction."""

import pytest
import torch

from magig_core.metrics.localization import (
    dilate,
    energy_in_mask,
    localization_scores,
    pointing_game,
    random_attribution_energy,
)


def _mask(b: int = 1, h: int = 8, w: int = 8) -> torch.Tensor:
    mask = torch.zeros(b, h, w, dtype=torch.bool)
    mask[:, 2:4, 2:5] = True  # 6 pixels
    return mask


def test_all_mass_inside_scores_one_and_all_outside_zero():
    mask = _mask(2)
    inside = torch.zeros(2, 3, 8, 8)
    inside[:, 0, 2:4, 2:5] = torch.rand(2, 2, 3) + 0.1
    outside = torch.rand(2, 3, 8, 8) * (~mask)[:, None]
    assert torch.allclose(energy_in_mask(inside, mask), torch.ones(2))
    assert torch.equal(energy_in_mask(outside, mask), torch.zeros(2))


def test_energy_counts_only_positive_mass_after_summing_channels():
    mask = _mask()
    a = torch.zeros(1, 3, 8, 8)
    a[0, 0, 2, 2] = 3.0  # inside: +3
    a[0, 1, 0, 0] = 1.0  # outside: +1
    a[0, 2, 7, 7] = -50.0  # large negative outside: ignored
    a[0, 0, 3, 3], a[0, 1, 3, 3] = 2.0, -2.0  # cancels to 0 after the channel sum
    assert energy_in_mask(a, mask).item() == pytest.approx(0.75)


def test_all_zero_and_all_negative_maps_score_zero_energy():
    mask = _mask(2)
    a = torch.zeros(2, 3, 8, 8)
    a[1] = -1.0
    assert torch.equal(energy_in_mask(a, mask), torch.zeros(2))


def test_pointing_game_hits_where_the_argmax_is_and_tolerance_extends_the_mask():
    mask = _mask(3)
    a = torch.zeros(3, 1, 8, 8)
    a[0, 0, 3, 4] = 5.0  # inside
    a[1, 0, 3, 5] = 5.0  # one pixel right of the mask
    a[2, 0, 7, 0] = 5.0  # far away
    assert pointing_game(a, mask).tolist() == [1.0, 0.0, 0.0]
    assert pointing_game(a, mask, tolerance=1).tolist() == [1.0, 1.0, 0.0]


def test_pointing_game_sums_channels_before_the_argmax():
    mask = _mask()
    a = torch.zeros(1, 3, 8, 8)
    a[0, 0, 0, 0] = 4.0  # largest single value, outside
    a[0, :, 2, 3] = 2.0  # channel sum 6, inside
    assert pointing_game(a, mask).item() == 1.0


def test_all_zero_map_points_at_the_top_left_pixel():
    mask = _mask(2)
    mask[1, 0, 0] = True
    assert pointing_game(torch.zeros(2, 3, 8, 8), mask).tolist() == [0.0, 1.0]


def test_dilate_grows_a_single_pixel_into_a_square():
    mask = torch.zeros(1, 7, 7, dtype=torch.bool)
    mask[0, 3, 3] = True
    assert dilate(mask, 2).sum().item() == 25
    assert torch.equal(dilate(mask, 0), mask)
    with pytest.raises(ValueError, match="tolerance"):
        dilate(mask, -1)


def test_uniform_map_scores_the_mask_fraction_which_is_chance_level():
    mask = _mask(2)
    uniform = torch.ones(2, 3, 8, 8)
    assert torch.allclose(energy_in_mask(uniform, mask), random_attribution_energy(mask))
    assert random_attribution_energy(mask)[0].item() == pytest.approx(6 / 64)
    torch.manual_seed(0)
    noisy = torch.rand(512, 3, 8, 8)
    assert energy_in_mask(noisy, _mask(512)).mean().item() == pytest.approx(6 / 64, abs=0.01)


def test_channel_summed_input_and_summary_row():
    mask = _mask()
    a = torch.zeros(1, 8, 8)
    a[0, 2, 2] = 1.0
    row = localization_scores(a, mask)
    assert row == pytest.approx({"energy_in_mask": 1.0, "pointing_game": 1.0, "mask_fraction": 6 / 64})


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="must be"):
        energy_in_mask(torch.zeros(1, 3, 8, 8), torch.zeros(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attributions"):
        pointing_game(torch.zeros(8, 8), torch.zeros(1, 8, 8, dtype=torch.bool))
