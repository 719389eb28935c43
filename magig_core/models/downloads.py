"""Getting weights from the Hugging Face Hub and download.pytorch.org: cache first, never hanging offline.

Both libraries retry or wait on DNS when the network is missing (``hf_hub_download`` spends ~23 s in
back-off), so before any download we honour ``HF_HUB_OFFLINE`` and probe the host with a short TCP connect.
Every failure becomes a :class:`WeightsUnavailableError` that says where the weights come from and how to
provide them by hand.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import huggingface_hub
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import LocalEntryNotFoundError

from magig_core.errors import WeightsUnavailableError

T = TypeVar("T")

PROBE_TIMEOUT_S = 2.0
_PROBE_MEMORY_S = 30.0
_probe_results: dict[tuple[str, int], tuple[float, bool]] = {}


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` forbids downloads; the zoo applies it to torchvision weights too."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.upper() in {"1", "ON", "YES", "TRUE"} or bool(hub_constants.HF_HUB_OFFLINE)


def _probe_target(url: str) -> tuple[str, int]:
    """The host a download would first connect to: the proxy when one applies, else the server."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not urllib.request.proxy_bypass(host):
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy:
            proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            return proxy_parts.hostname or "", proxy_parts.port or 80
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def host_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A TCP connect (DNS included) bounded by ``timeout`` in total; remembered for a short while."""
    target = _probe_target(url)
    remembered = _probe_results.get(target)
    if remembered is not None and time.monotonic() - remembered[0] < _PROBE_MEMORY_S:
        return remembered[1]
    outcome: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    # DNS resolution has no timeout of its own, so the probe runs in a thread we stop waiting for.
    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    reachable = bool(outcome and outcome[0])
    _probe_results[target] = (time.monotonic(), reachable)
    return reachable


def forget_probe_results() -> None:
    """Drop remembered reachability, e.g. after the network came back."""
    _probe_results.clear()


def require_network(model: str, source: str, url: str, remedies: list[str]) -> None:
    """Raise at once when a download cannot succeed, instead of letting a library retry for minutes."""
    if offline_mode():
        raise WeightsUnavailableError(
            model,
            source,
            "they are not in the local cache and HF_HUB_OFFLINE=1 forbids downloading.",
            [*remedies, "or unset HF_HUB_OFFLINE on a machine with network access and load again"],
        )
    if not host_reachable(url):
        host, port = _probe_target(url)
        raise WeightsUnavailableError(
            model,
            source,
            f"they are not in the local cache and {host}:{port} cannot be reached (no network?).",
            remedies,
        )


def hub_remedies(repo_id: str, *, filename: str | None = None, subfolder: str | None = None) -> list[str]:
    if filename is not None:
        target = f"{subfolder}/{filename}" if subfolder else filename
        command = f"hf download {repo_id} {target}"
    elif subfolder:
        command = f"hf download {repo_id} --include '{subfolder}/*'"
    else:
        command = f"hf download {repo_id}"
    return [
        f"pre-download while online: `{command}` (stores it in the Hugging Face cache, "
        f"{hub_constants.HF_HUB_CACHE}; set HF_HOME to move it)",
        "or pass weights='/path/to/local/copy' (the downloaded file or folder)",
    ]


def _hub_source(repo_id: str, subfolder: str | None, filename: str | None = None) -> str:
    path = "/".join(part for part in (subfolder, filename) if part)
    return f"Hugging Face Hub repo {repo_id}" + (f", {path}" if path else "")


def hub_file(model: str, repo_id: str, filename: str, *, subfolder: str | None = None) -> Path:
    """One file from the Hub: from the cache if present, else downloaded (fast failure when offline)."""
    try:
        return Path(
            huggingface_hub.hf_hub_download(repo_id, filename, subfolder=subfolder, local_files_only=True)
        )
    except LocalEntryNotFoundError:
        pass
    source = _hub_source(repo_id, subfolder, filename)
    remedies = hub_remedies(repo_id, filename=filename, subfolder=subfolder)
    require_network(model, source, hub_constants.ENDPOINT, remedies)
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, subfolder=subfolder))
    except OSError as error:  # includes HfHubHTTPError and LocalEntryNotFoundError
        raise WeightsUnavailableError(model, source, f"the download failed ({error}).", remedies) from error


def hub_pretrained(
    model: str,
    loader: Callable[..., T],
    repo_id: str,
    *,
    subfolder: str | None = None,
    former_repo_ids: tuple[str, ...] = (),
    **kwargs: Any,
) -> T:
    """Run a diffusers ``from_pretrained`` against the cache first, then online with a fast failure.

    ``former_repo_ids`` are ids the same files were published under before: a copy cached under one of them
    is used (offline users keep working), but downloads only come from ``repo_id``.
    """
    for cached_id in (repo_id, *former_repo_ids):
        try:
            with warnings.catch_warnings():
                # diffusers passes a deprecated argument to huggingface_hub; the warning means nothing to users.
                warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
                return loader(cached_id, subfolder=subfolder, local_files_only=True, **kwargs)
        except OSError:
            pass
    source = _hub_source(repo_id, subfolder)
    if former_repo_ids:
        source += f" (formerly {', '.join(former_repo_ids)}; a copy cached under that id is used too)"
    remedies = hub_remedies(repo_id, subfolder=subfolder)
    require_network(model, source, hub_constants.ENDPOINT, remedies)
    try:
        return loader(repo_id, subfolder=subfolder, **kwargs)
    except OSError as error:
        raise WeightsUnavailableError(model, source, f"loading failed ({error}).", remedies) from error


def torchvision_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_state_dict(model: str, weights: Any) -> dict[str, torch.Tensor]:
    """A torchvision weights enum's state dict from ``$TORCH_HOME/hub/checkpoints`` or its URL."""
    url: str = weights.url
    filename = url.rsplit("/", 1)[-1]
    folder = torchvision_checkpoint_dir()
    remedies = [
        'pre-download while online: `python -c "import torchvision; '
        f"torchvision.models.get_weight('{weights}').get_state_dict()\"` (stores {filename} in {folder}; "
        "set TORCH_HOME to move it)",
        f"or copy {filename} (from {url}) into {folder}",
        f"or pass weights='/path/to/{filename}'",
    ]
    if not (folder / filename).is_file():
        require_network(model, url, url, remedies)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except OSError as error:  # urllib's URLError is an OSError
        raise WeightsUnavailableError(model, url, f"the download failed ({error}).", remedies) from error
