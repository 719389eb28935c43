"""Load test of the web app: K visitors × M requests with mixed settings, some visitors vanishing mid-run.

    python benchmarks/load.py --clients 3 --requests 4 --vanishing 1

Starts ``python app.py`` on a free port (``--app-dir`` picks another checkout, e.g. to compare with an
older version), runs the visitors at once through gradio_client, and checks what a live audience needs:
every request of a visitor who stays completes, each explanation equals the same run done serially by the
explorer library (attributions from the npz download), no unexpected server error, and quick endpoints
stay quick. Vanishing visitors are separate processes that start a long run and are killed after a random
delay. Prints p50/p95 latencies per endpoint and the server's peak resident memory. Not a timed test:
numbers depend on the machine and on what else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from magig_core.explorer.form import AUTO_SIZE, TOP1  # noqa: E402
from magig_core.explorer.service import Explorer  # noqa: E402
from magig_core.explorer.settings import RunSettings  # noqa: E402
from magig_core.memory import rss_bytes  # noqa: E402

OUTPUTS = ("maps", "frames", "position", "confidence", "distance", "manifold", "accumulation", "table", "downloads",
           "status", "predictions", "agreement", "live")
FIXED = {"classifier": "demo-shapes", "autoencoder": "demo-shapes", "fraction": 0.0, "interpolation": "lerp",
         "objective": "prob", "precision": "fp32", "style": "heatmap", "scale": "shared", "size": AUTO_SIZE}
METHOD_SETS = (["ig"], ["gig", "ig"], ["ma-gig", "gig"], ["eig"], ["gi", "blur-ig"], ["ma-gig"], ["ig2", "gig"])
STEPS = (8, 12, 16, 24)
VANISHING = """
import sys, time
from gradio_client import Client, handle_file
client = Client(sys.argv[1], verbose=False, analytics_enabled=False, download_files=False)
job = client.submit(image=handle_file(sys.argv[2]), methods=["ma-gig", "eig", "gig"], steps=400,
                    classifier="demo-shapes", autoencoder="demo-shapes", fraction=0.0, interpolation="lerp",
                    objective="prob", target="top-1 prediction", precision="fp32", style="heatmap",
                    scale="shared", size="classifier's own", api_name="/explain")
while not job.done():
    time.sleep(0.05)
"""


@dataclass
class Tally:
    """Everything the visitors saw, shared between their threads."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    runs: list[tuple[str, RunSettings, dict[str, np.ndarray]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    vanished: list[float] = field(default_factory=list)  # seconds each vanishing visitor stayed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(endpoint, []).append(seconds)


class Server:
    """``python app.py`` on a free port, with its peak resident memory sampled every 20 ms."""

    def __init__(self, log: Path, app_dir: Path = ROOT) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = os.environ | {"GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
                            "HF_HUB_OFFLINE": "1", "MAGIG_WARM_EXAMPLES": "off"}  # every run computes
        self.log = log
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=app_dir, env=env, stdout=log.open("w"),
                                        stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/"
        self.peak = 0
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited:\n{log.read_text()[-3000:]}")
            try:
                Client(self.url, verbose=False, analytics_enabled=False, download_files=False)
                break
            except Exception:  # not listening yet
                if time.monotonic() > deadline:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.5)
        self.baseline = rss_bytes(self.process.pid) or 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while self.process.poll() is None:
            self.peak = max(self.peak, rss_bytes(self.process.pid) or 0)
            time.sleep(0.02)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def visitor(url: str, number: int, requests: int, examples: list[str], class_count: int, tally: Tally,
            folder: Path, seed: int) -> None:
    """One visitor's session: explanations with random settings, previews, estimates and scrubbing."""
    rng = random.Random(seed * 1000 + number)
    client = Client(url, verbose=False, analytics_enabled=False, download_files=str(folder))
    explained = False
    for _ in range(requests):
        kind = rng.choices(("explain", "predict", "estimate", "scrub"), weights=(5, 2, 2, 2 if explained else 0))[0]
        image = rng.choice(examples)
        started = time.monotonic()
        try:
            if kind == "explain":
                methods, steps = rng.choice(METHOD_SETS), rng.choice(STEPS)
                target = TOP1 if rng.random() < 0.7 else str(rng.randrange(class_count))
                values = client.predict(image=handle_file(image), methods=methods, steps=steps, target=target,
                                        **FIXED, api_name="/explain")
                result = dict(zip(OUTPUTS, values, strict=True))
                settings = RunSettings("demo-shapes", "demo-shapes", tuple(methods), steps=steps,
                                       target=None if target == TOP1 else int(target))
                with tally.lock:
                    tally.runs.append((image, settings, attributions(result)))
                explained = True
            elif kind == "predict":
                client.predict(handle_file(image), "demo-shapes", AUTO_SIZE, api_name="/predict")
            elif kind == "estimate":
                client.predict("demo-shapes", "demo-shapes", rng.choice(METHOD_SETS), rng.choice(STEPS), 0.0,
                               "lerp", "prob", "fp32", AUTO_SIZE, api_name="/estimate")
            else:
                client.predict(rng.random(), api_name="/scrub")
        except AppError as err:
            with tally.lock:
                tally.failures.append(f"{kind}: {err}")
            continue
        tally.record(kind, time.monotonic() - started)


def attributions(result: dict) -> dict[str, np.ndarray]:
    npz = next(p for p in result["downloads"] if p.endswith(".npz"))
    with np.load(npz) as arrays:
        return {k: arrays[k] for k in arrays.files if k.endswith("_attributions")}


def vanishing_visitor(url: str, image: str, delay: float, script: Path, tally: Tally) -> None:
    """A visitor who starts a long run and disappears (its process is killed) after ``delay`` seconds."""
    child = subprocess.Popen([sys.executable, str(script), url, image])
    time.sleep(delay)
    child.kill()
    child.wait(10)
    with tally.lock:
        tally.vanished.append(delay)


def compare_with_serial_runs(runs, tolerance: float = 1e-4) -> list[str]:
    """Rerun every finished explanation serially with the explorer library; list the ones that differ."""
    explorer = Explorer()
    mismatches = []
    for image, settings, saved in runs:
        final = list(explorer.run(image, settings))[-1]
        for result in final.results:
            got = saved[f"{result.method.replace('-', '_')}_attributions"]
            if not np.allclose(got, result.attributions, rtol=tolerance, atol=1e-6):
                mismatches.append(f"{Path(image).name} {settings.methods} {settings.steps}: {result.method}")
    return mismatches


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=3, help="visitors who stay (threads)")
    parser.add_argument("--requests", type=int, default=4, help="requests per staying visitor")
    parser.add_argument("--vanishing", type=int, default=1, help="visitors who vanish mid-run (processes)")
    parser.add_argument("--vanish-repeats", type=int, default=3, help="long runs each vanishing visitor starts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py is served")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="magig-load-"))
    server = Server(work / "app.log", args.app_dir)
    explorer_examples = [e.path for e in Explorer().examples if "demo" in e.caption]
    script = work / "vanishing.py"
    script.write_text(VANISHING)
    tally = Tally()
    rng = random.Random(args.seed)
    started = time.monotonic()
    threads = [threading.Thread(target=visitor, args=(server.url, n, args.requests, explorer_examples, 6, tally,
                                                      work / f"visitor{n}", args.seed))
               for n in range(args.clients)]

    def vanishing(number: int) -> None:
        for _ in range(args.vanish_repeats):
            vanishing_visitor(server.url, rng.choice(explorer_examples), rng.uniform(1.0, 4.0), script, tally)

    threads += [threading.Thread(target=vanishing, args=(n,)) for n in range(args.vanishing)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    peak, baseline = server.peak, server.baseline
    server.close()
    tracebacks = server.log.read_text().count("Traceback")
    mismatches = compare_with_serial_runs(tally.runs)

    expected = args.clients * args.requests
    completed = sum(len(v) for v in tally.latencies.values())
    print(f"{args.clients} visitors × {args.requests} requests + {args.vanishing} vanishing visitor(s) × "
          f"{args.vanish_repeats} long runs, {wall:.0f} s wall\n")
    print("| endpoint | n | p50 (s) | p95 (s) |\n| --- | --- | --- | --- |")
    for endpoint, values in sorted(tally.latencies.items()):
        p50, p95 = percentiles(values)
        print(f"| {endpoint} | {len(values)} | {p50:.2f} | {p95:.2f} |")
    print(f"\n{len(tally.vanished)} long runs (1200 path steps each) abandoned after "
          f"{min(tally.vanished, default=0):.1f}–{max(tally.vanished, default=0):.1f} s")
    print(f"completed {completed}/{expected} requests of staying visitors; failures: {tally.failures or 'none'}")
    print(f"explanations equal to serial runs: {len(tally.runs) - len(mismatches)}/{len(tally.runs)}"
          + (f"; differing: {mismatches}" if mismatches else ""))
    print(f"server tracebacks in the log: {tracebacks}")
    print(f"server RSS: {baseline / 2**20:.0f} MB at start, peak {peak / 2**20:.0f} MB")
    if args.json:
        summary = {"latencies": tally.latencies, "vanished": tally.vanished, "failures": tally.failures,
                   "mismatches": mismatches,
                   "completed": completed, "expected": expected, "tracebacks": tracebacks,
                   "rss_start_mb": baseline / 2**20, "rss_peak_mb": peak / 2**20, "wall_s": wall}
        args.json.write_text(json.dumps(summary, indent=2))
    healthy = completed == expected and not tally.failures and not mismatches and not tracebacks
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
