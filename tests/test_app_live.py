"""The app as a live audience meets it: ``python app.py`` in its own process, driven through gradio_client.

A visitor who vanishes mid-run (a killed script), quick calls during someone else's long run, and the
server's memory after huge uploads. Each test names the mistake it catches; times are compared with path
step times measured in the same test, so the assertions do not depend on this machine's speed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from magig_core.demo.example_scenes import load_examples
from magig_core.memory import rss_bytes
from tests.test_app import OUTPUTS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*:pandas.errors.Pandas4Warning"),
]

ROOT = Path(__file__).resolve().parents[1]
VALID = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "fraction": 0.0, "interpolation": "lerp",
         "objective": "prob", "target": "top-1 prediction", "precision": "fp32", "style": "heatmap",
         "scale": "shared", "size": "classifier's own"}
LONG_RUN = {"methods": ["ma-gig", "eig", "gig"], "steps": 400}  # ~1200 path steps: minutes if never stopped
RSS_BOUND_MB = 50  # above the warm baseline after six 7000×7000 uploads (measured: +0 after one, +21 after ten)

KILLED_CLIENT = """
import sys, time
from gradio_client import Client, handle_file
client = Client(sys.argv[1], verbose=False, analytics_enabled=False, download_files=False)
job = client.submit(image=handle_file(sys.argv[2]), methods=["ma-gig", "eig", "gig"], steps=400,
                    classifier="demo-shapes", autoencoder="demo-shapes", fraction=0.0, interpolation="lerp",
                    objective="prob", target="top-1 prediction", precision="fp32", style="heatmap",
                    scale="shared", size="classifier's own", api_name="/explain")
while not any("step" in (unit.desc or "") for unit in job.status().progress_data or []):
    if job.done():  # a run that ends before this client saw it compute cannot show a stop
        print("finished before a path step was seen", flush=True)
        sys.exit(1)
    time.sleep(0.01)
print("computing", flush=True)
time.sleep(600)
"""


class Server:
    """``python app.py`` on a free port, with its own memory to measure."""

    def __init__(self, log: Path, extra_env: dict[str, str] | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = os.environ | {"GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
                            "HF_HUB_OFFLINE": "1"} | (extra_env or {})
        self._log = log.open("w")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 300
        while True:
            assert self.process.poll() is None, f"the app exited: {log.read_text()[-2000:]}"
            try:
                self.client()
                return
            except Exception:  # not listening yet
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.5)

    def client(self) -> Client:
        return Client(self.url, verbose=False, analytics_enabled=False, download_files=False)

    def rss_mb(self) -> float:
        return rss_bytes(self.process.pid) / 2**20

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self._log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = Server(tmp_path_factory.mktemp("server") / "app.log")
    yield live
    live.close()


@pytest.fixture(scope="module")
def examples() -> list[str]:
    return [e["path"] for e in load_examples()]


def explain(client: Client, image: str, **changes) -> tuple:
    return client.predict(image=handle_file(image), **(VALID | {"methods": ["ig"], "steps": 8} | changes),
                          api_name="/explain")


def seconds_per_step(client: Client, image: str, steps: int = 60) -> float:
    table = explain(client, image, methods=["ma-gig"], steps=steps)[OUTPUTS.index("table")]
    return table["data"][0][table["headers"].index("Seconds")] / steps


def wait_for_a_path_step(job, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not any("step" in (unit.desc or "") for unit in job.status().progress_data or []):
        assert time.monotonic() < deadline and not job.done(), "the long run never reported a path step"
        time.sleep(0.01)


def test_a_killed_client_frees_the_device_within_a_few_path_steps(server, examples, tmp_path):
    """Catches runs that outlive their client: the ~1200 steps left would make the next visitor wait."""
    client = server.client()
    step = seconds_per_step(client, examples[0])
    started = time.monotonic()
    explain(client, examples[1], steps=5)
    quick = time.monotonic() - started
    bound = 2 * quick + 20 * step + 1.0
    assert 1150 * step > 4 * bound, "the long run is too short here to tell a stop from a finish"

    script = tmp_path / "client.py"
    script.write_text(KILLED_CLIENT)
    child = subprocess.Popen([sys.executable, str(script), server.url, examples[2]], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "computing"
    finally:
        child.kill()
        child.wait(10)
    killed = time.monotonic()
    explain(client, examples[3], steps=6)
    assert time.monotonic() - killed < bound


def test_quick_calls_answer_within_a_second_during_another_visitors_long_run(server, examples):
    """Catches quick endpoints sharing the explanations' queue (they waited 10–30 s behind a run).

    Each quick call is timed first with no run going (idle), then during another visitor's long run: it may
    slow down as the run takes a core, but never by a run's length.
    """
    visitor, other = server.client(), server.client()
    explain(other, examples[4], methods=["ma-gig", "gig"], steps=8)  # a run of its own to scrub through
    calls = {
        "predict": lambda: other.predict(handle_file(examples[0]), "demo-shapes", "classifier's own",
                                         api_name="/predict"),
        "estimate": lambda: other.predict("demo-shapes", "demo-shapes", ["ma-gig"], 32, 0.0, "lerp", "prob",
                                          "fp32", "classifier's own", api_name="/estimate"),
        "scrub": lambda: other.predict(0.3, api_name="/scrub"),
    }

    def timed() -> dict[str, list[float]]:
        seconds: dict[str, list[float]] = {}
        for name, call in calls.items():
            for _ in range(3):
                started = time.monotonic()
                call()
                seconds.setdefault(name, []).append(time.monotonic() - started)
        return seconds

    idle = timed()
    job = visitor.submit(image=handle_file(examples[5]), **(VALID | LONG_RUN), api_name="/explain")
    wait_for_a_path_step(job)
    busy = timed()
    still_running = not job.done()
    job.cancel()
    for name, times in busy.items():
        alone = idle[name]
        assert sorted(times)[1] < 3 * sorted(alone)[1] + 0.5 and max(times) < 3 * max(alone) + 1.0, \
            f"{name} took {times} s during a run, {alone} s alone"
    assert still_running, "the long run ended before the quick calls were made"


def huge_png(path: Path, variant: int) -> Path:
    """A 7000×7000 RGB PNG (49 megapixels, just under the app's limit) that compresses to a few MB."""
    size = (7000, 7000)
    image = Image.merge("RGB", [Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size),
                                Image.linear_gradient("L").rotate(90).resize(size)])
    ImageDraw.Draw(image).rectangle((variant * 600, 400, variant * 600 + 1500, 1900), fill=(40 * variant, 200, 90))
    image.save(path, compress_level=1)
    return path


@pytest.mark.skipif(rss_bytes() is None, reason="reads resident memory from /proc (Linux)")
def test_memory_returns_to_its_baseline_after_huge_uploads(tmp_path, examples):
    """Catches memory that ratchets with every upload or run (full-resolution copies kept, freed heap never
    returned: the app used to climb from 1.1 GB to 2 GB after a few large images). A fresh server, so the
    baseline is its own.
    """
    server = Server(tmp_path / "app.log")
    try:
        client = server.client()
        client.predict(handle_file(examples[0]), "demo-shapes", "classifier's own", api_name="/predict")
        explain(client, examples[0], methods=["ig", "ma-gig"])  # loads what every run needs (LPIPS, banks)
        baseline = server.rss_mb()
        after = []
        for variant in range(6):
            image = str(huge_png(tmp_path / f"huge{variant}.png", variant))
            client.predict(handle_file(image), "demo-shapes", "classifier's own", api_name="/predict")
            explain(client, image, methods=["ig", "ma-gig"], steps=8 + variant)
            after.append(server.rss_mb() - baseline)
        assert max(after) < RSS_BOUND_MB, f"RSS above the warm baseline ({baseline:.0f} MB) after each: {after}"
    finally:
        server.close()


def test_the_app_starts_offline_with_empty_caches_and_explains_a_photograph_with_the_real_pair(tmp_path):
    """No hub cache, no torchvision cache, no network: the bundled CIFAR-10 ResNet-56 and TAEF2 still explain
    a gallery photograph. Catches a start-up or a default that reaches for a download or a cached file."""
    empty = {name: str(tmp_path / name.lower()) for name in ("HF_HOME", "TORCH_HOME", "XDG_CACHE_HOME")}
    server = Server(tmp_path / "app.log", extra_env=empty | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    try:
        photo = str(ROOT / "assets" / "photos" / "chelsea_cat.jpg")
        values = server.client().predict(
            image=handle_file(photo), **(VALID | {"classifier": "cifar10-resnet56", "autoencoder": "taef2"}),
            methods=["ma-gig", "gig"], steps=8, api_name="/explain")
    finally:
        server.close()
    result = dict(zip(OUTPUTS, values, strict=True))
    assert [item["caption"].split(" ·")[0] for item in result["maps"]] == ["MA-GIG", "GIG"]
    assert "cifar10-resnet56 / taef2" in result["status"] and "instead" not in result["status"]
    assert result["predictions"]["label"] == "cat"
    for cache in ("HF_HOME", "TORCH_HOME"):  # nothing was fetched or cached on the way
        assert not Path(empty[cache]).exists() or not any(Path(empty[cache]).rglob("*.*")), cache
