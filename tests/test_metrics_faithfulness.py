"""DiffID / Insertion / Deletion against hand-computed answers and a brute-force per-ratio oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from magig_core.metrics import PAPER_RATIOS, FaithfulnessResult, faithfulness, importance_ranks, perturb
from magig_core.metrics.faithfulness import perturb_normalized
from magig_core.models.image_classifier import ImageClassifier


class RegionReader(nn.Module):
    """Class 0 iff the mean of the top-left 2×2 block (all channels) exceeds 0.5; class 1 is constant 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, :2, :2].mean(dim=(1, 2, 3))
        return torch.stack([10 * (region - 0.5), torch.zeros_like(region)], dim=1)


def _region_image() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(1, 3, 4, 4)
    image[:, :, :2, :2] = 1.0
    region_first = torch.full_like(image, 0.1)
    region_first[:, :, :2, :2] = 1.0
    return image, region_first


@pytest.mark.parametrize("imputation", ["mean", "zero"])
def test_region_reader_known_answers(imputation: str) -> None:
    """n = 48 elements, 12 of them in the region (value 1, rest 0); m = 4, 9, 14, 19, 24, 28, 33, 38, 43.

    Region ranked first. Deletion removes region elements first: m = 4 leaves 8 ones and fills 4 with
    8/44 (mean) or 0 → region mean 0.73 / 0.67, still class 0; from m = 9 on it drops below 0.5.
    Insertion replaces background first; at m = 38 and 43 only region elements are preserved, so the mean
    fill is 1 (always correct), while the zero fill leaves 10/12 (correct) and 5/12 (wrong).
    Region ranked last mirrors this with the games swapped.
    """
    image, region_first = _region_image()
    late = [True] * 8 + [imputation == "mean"]
    good = faithfulness(RegionReader(), image, region_first, [0], imputation=imputation)
    assert good.insertion_correct.tolist() == [late]
    assert good.deletion_correct.tolist() == [[True] + [False] * 8]
    assert good.diffid == pytest.approx(sum(late) / 9 - 1 / 9)

    region_last = 1.1 - region_first  # the same scores, reversed order
    bad = faithfulness(RegionReader(), image, region_last, [0], imputation=imputation)
    assert bad.insertion_correct.tolist() == [[True] + [False] * 8]
    assert bad.deletion_correct.tolist() == [late]
    assert bad.diffid == pytest.approx(1 / 9 - sum(late) / 9)


def test_ties_rank_by_element_index() -> None:
    scores = torch.tensor([[1.0, 0.0, -1.0, 0.0, 2.0, 1.0]])
    # |A| = 1,0,1,0,2,1 → order: idx4 (2), then idx0, idx2, idx5 (1s by index), then idx1, idx3.
    assert importance_ranks(scores).tolist() == [[1, 4, 2, 5, 0, 3]]
    assert importance_ranks(torch.zeros(2, 5)).tolist() == [list(range(5))] * 2


def test_insertion_keeps_exactly_what_deletion_removes_at_the_complement_ratio() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 5)
    a = torch.randint(0, 3, x.shape).float()  # many ties
    ranks = importance_ranks(a)
    ins = perturb_normalized(x, ranks, [0.3], "insertion", "zero")[0] == 0
    dele = perturb_normalized(x, ranks, [0.7], "deletion", "zero")[0] == 0
    n = x[0].numel()
    assert int(n * 0.3) + int(n * 0.7) == n  # complementary counts, so the sets must be complementary
    assert torch.equal(ins, ~dele)


# ---------------------------------------------------------------------------------------------------
# Brute-force oracle: Python sorting, per image, per ratio, one forward pass per perturbed image.


def _oracle_order(scores: np.ndarray) -> list[int]:
    return sorted(range(scores.size), key=lambda i: (-abs(float(scores[i])), i))


def _oracle_blur(image: np.ndarray) -> np.ndarray:
    c, h, w = image.shape
    padded = np.zeros((c, h + 10, w + 10))
    padded[:, 5 : 5 + h, 5 : 5 + w] = image
    out = np.zeros((c, h, w))
    for i in range(h):
        for j in range(w):
            out[:, i, j] = padded[:, i : i + 11, j : j + 11].sum(axis=(1, 2)) / 121.0
    return out


def _oracle(classifier: nn.Module, images01, attributions, labels, ratios, imputation):
    ins_c, del_c, ins_s, del_s = [], [], [], []
    for image, attr, label in zip(images01, attributions, labels, strict=True):
        v = classifier.normalize(image[None])[0] if hasattr(classifier, "normalize") else image
        flat = v.double().numpy().reshape(-1)
        order = _oracle_order(attr.numpy().reshape(-1))
        n = flat.size
        blurred = _oracle_blur(v.double().numpy()).reshape(-1)
        p0 = classifier.forward_normalized(v[None]).softmax(-1)[0, label].item()
        rows = {"insertion": ([], []), "deletion": ([], [])}
        for game, (c_row, s_row) in rows.items():
            for r in ratios:
                m = int(n * r)
                replaced = order[:m] if game == "deletion" else order[n - m :]
                kept = sorted(set(range(n)) - set(replaced))
                out = flat.copy()
                if imputation == "mean":
                    out[replaced] = flat[kept].sum() / (len(kept) + 1e-8)
                elif imputation == "zero":
                    out[replaced] = 0.0
                else:
                    out[replaced] = blurred[replaced]
                pert = torch.from_numpy(out).float().view(1, *v.shape)
                logits = classifier.forward_normalized(pert)[0]
                c_row.append(int(logits.argmax()) == int(label))
                s_row.append(min(1.0, max(0.0, logits.softmax(-1)[label].item() / (p0 + 1e-8))))
        ins_c.append(rows["insertion"][0])
        ins_s.append(rows["insertion"][1])
        del_c.append(rows["deletion"][0])
        del_s.append(rows["deletion"][1])
    return np.array(ins_c), np.array(del_c), np.array(ins_s), np.array(del_s)


def _tiny_classifier(classes: int = 4) -> ImageClassifier:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, classes))
    return ImageClassifier(net, class_names=[str(i) for i in range(classes)], input_size=(6, 6))


@pytest.mark.parametrize("imputation", ["mean", "zero", "blur"])
def test_matches_brute_force_oracle(imputation: str) -> None:
    clf = _tiny_classifier()
    gen = torch.Generator().manual_seed(1)
    images = torch.rand(5, 3, 6, 6, generator=gen)
    attributions = torch.randint(-2, 3, images.shape, generator=gen).float()  # heavy ties, signed
    attributions[1] = 0.0  # an all-tie image: pure index order
    labels = torch.randint(0, 4, (5,), generator=gen)
    ratios = (0.1, 0.25, 0.5, 0.9)
    got = faithfulness(clf, images, attributions, labels, ratios=ratios, imputation=imputation, batch_size=3)
    ins_c, del_c, ins_s, del_s = _oracle(clf, images, attributions, labels, ratios, imputation)
    np.testing.assert_array_equal(got.insertion_correct.numpy(), ins_c)
    np.testing.assert_array_equal(got.deletion_correct.numpy(), del_c)
    np.testing.assert_allclose(got.insertion_soft.numpy(), ins_s, atol=1e-5)
    np.testing.assert_allclose(got.deletion_soft.numpy(), del_s, atol=1e-5)
    assert got.insertion == pytest.approx(ins_c.mean())
    assert got.diffid == pytest.approx(ins_c.mean() - del_c.mean())


def test_chunking_and_concatenation_do_not_change_the_answer() -> None:
    clf = _tiny_classifier()
    gen = torch.Generator().manual_seed(2)
    images = torch.rand(7, 3, 6, 6, generator=gen)
    attributions = torch.randn(images.shape, generator=gen)
    labels = torch.randint(0, 4, (7,), generator=gen)
    full = faithfulness(clf, images, attributions, labels, batch_size=1000)
    for batch_size in (1, 5, 19):
        part = faithfulness(clf, images, attributions, labels, batch_size=batch_size)
        assert torch.equal(part.insertion_correct, full.insertion_correct)
        assert torch.equal(part.deletion_correct, full.deletion_correct)
        torch.testing.assert_close(part.insertion_soft, full.insertion_soft)
    pieces = [faithfulness(clf, images[i : i + 3], attributions[i : i + 3], labels[i : i + 3]) for i in (0, 3, 6)]
    merged = FaithfulnessResult.concat(pieces)
    assert merged.diffid == pytest.approx(full.diffid)
    assert torch.equal(merged.deletion_correct, full.deletion_correct)
    assert full.ratios == PAPER_RATIOS
    assert full.image_diffid.mean().item() == pytest.approx(full.diffid)


def test_mean_imputation_lives_in_normalized_space() -> None:
    clf = ImageClassifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 2)), input_size=(2, 2))
    image = torch.rand(1, 3, 2, 2)
    attributions = torch.arange(12.0).view(1, 3, 2, 2)  # element 11 most important, element 0 least
    shown = perturb(clf, image, attributions, 0.5, "deletion")  # replaces flat elements 6..11
    v = clf.normalize(image).flatten()
    fill = v[:6].double().sum() / (6 + 1e-8)
    expected = v.clone()
    expected[6:] = fill.float()
    torch.testing.assert_close(clf.normalize(shown).flatten(), expected)
    # a per-channel [0,1] mean would give a different image: the value is one scalar in norm space
    assert not torch.allclose(shown.flatten()[6:], image.flatten()[:6].mean().expand(6))


def test_soft_scores_are_the_probability_ratio_clamped_at_one_and_binary_scores_use_the_label() -> None:
    """soft = min(1, p_c(perturbed) / p_c(original)), recomputed per image, ratio and game from the images
    ``perturb`` shows. Some ratios here exceed 1, so a missing clamp, a clamp at the wrong end or a ratio
    taken the other way round fails (a range check alone passes all of these on most inputs)."""
    clf = _tiny_classifier()
    images = torch.rand(3, 3, 6, 6, generator=torch.Generator().manual_seed(7))
    attributions = torch.randn(images.shape, generator=torch.Generator().manual_seed(8))
    labels = [0, 1, 2]
    res = faithfulness(clf, images, attributions, labels)
    raw = {}
    with torch.no_grad():
        p_original = clf(images).softmax(-1)[range(3), labels]
        for game in ("insertion", "deletion"):
            shown = [[perturb(clf, images[b : b + 1], attributions[b : b + 1], r, game) for r in PAPER_RATIOS]
                     for b in range(3)]
            raw[game] = torch.tensor(
                [[clf(x).softmax(-1)[0, labels[b]].item() / p_original[b].item() for x in row]
                 for b, row in enumerate(shown)]
            )
    torch.testing.assert_close(res.insertion_soft, raw["insertion"].clamp(max=1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(res.deletion_soft, raw["deletion"].clamp(max=1), atol=1e-5, rtol=1e-5)
    assert (torch.cat(list(raw.values())) > 1).any()  # the clamp is exercised
    preds = clf(images).argmax(-1)
    assert res.original_correct.tolist() == (preds == torch.tensor(labels)).tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"imputation": "noise"}, "unknown imputation"), ({"ratios": (0.5, 1.5)}, "ratios must lie"),
     ({"ratios": ()}, "at least one ratio"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_options_say_what_to_do(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        faithfulness(RegionReader(), *(_region_image()), [0], **kwargs)


def test_shape_mismatch_is_reported() -> None:
    image, attr = _region_image()
    with pytest.raises(ValueError, match="must match"):
        faithfulness(RegionReader(), image, attr[:, :2], [0])
    with pytest.raises(ValueError, match="labels"):
        faithfulness(RegionReader(), image, attr, [0, 1])
