"""What a visitor waits for beyond the walks: one photo through ``/explain``, as a new user would run it.

    python benchmarks/run_wait.py [--steps 32,200] [--repeats 3]

Starts ``python app.py`` on a free port (examples not warmed, so every run computes), sends a gallery
photograph (451×300) with MA-GIG + GIG through gradio_client, and times each streamed update as the client
receives it: the set-up (the first update), the maps (both in), the scores (the table has every DiffID),
the files (the downloads listed) and the run's end. The walks end at the set-up plus the longer walk
(the methods walk side by side from the set-up; their walk seconds come from the status line). Printed per
setting: end to end, the walks, and when maps, scores and files arrived after the walks ended. Run it on
an idle machine: the numbers are wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gradio_client import Client, handle_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import FIXED, OUTPUTS, ROOT, Server

PHOTO = ROOT / "assets" / "photos" / "chelsea_cat.jpg"
REAL = {**FIXED, "classifier": "cifar10-resnet56", "autoencoder": "taef2", "fraction": 0.0, "size": "64"}


def timeline(client: Client, steps: int) -> dict[str, float]:
    """Seconds from submitting to each stage of one run, the walk seconds of each method, and the run time the
    app estimated beforehand."""
    form = {key: value for key, value in REAL.items() if key not in ("style", "scale")}
    line = client.predict(methods=["ma-gig", "gig"], steps=steps, **form, api_name="/estimate")
    found = re.search(r"\*\*(< )?([\d.]+) (s|min)\*\*", line)
    estimated = float(found.group(2)) * (60 if found.group(3) == "min" else 1) / (2 if found.group(1) else 1)
    started = time.monotonic()
    job = client.submit(image=handle_file(str(PHOTO)), methods=["ma-gig", "gig"], steps=steps,
                        target="top-1 prediction", **REAL, api_name="/explain")
    seen: dict[str, float] = {}
    outputs: dict = dict.fromkeys(OUTPUTS)
    for update in job:
        now = time.monotonic() - started
        for name, value in zip(OUTPUTS, update, strict=False):  # an older app (--app-dir) may have fewer
            if isinstance(value, dict) and value.get("__type__") == "update":  # unchanged, or a property only
                if "value" not in value:
                    continue
                value = value["value"]
            outputs[name] = value
        seen.setdefault("setup", now)
        if len(outputs["maps"] or []) == 2:
            seen.setdefault("maps", now)
        table = outputs["table"] or {}
        if table and _all_scored(table):
            seen.setdefault("scores", now)
        if outputs["downloads"]:
            seen.setdefault("files", now)
    job.result()
    seen["done"] = time.monotonic() - started
    walks = {name: float(seconds) for name, seconds in re.findall(r"(MA-GIG|GIG) ([\d.]+) s", outputs["status"])}
    seen["walks"] = seen["setup"] + max(walks.values())
    return seen | {f"walk {name}": seconds for name, seconds in walks.items()} | {"estimated": estimated}


def _all_scored(table: dict) -> bool:
    column = next((k for k, h in enumerate(table["headers"]) if h.startswith("DiffID")), None)
    if column is None:
        return False
    return len(table["data"]) == 2 and all(row[column] not in (None, "", "NaN") for row in table["data"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="32,200", help="path point counts to time (comma-separated)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting (each with other point counts, "
                                                                "so none replays from the cache)")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py is served")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="magig-wait-"))
    server = Server(work / "app.log", args.app_dir)
    client = Client(server.url, verbose=False, analytics_enabled=False, download_files=False)
    runs: dict[int, list[dict[str, float]]] = {}
    try:
        timeline(client, 8)  # the first run loads what later runs reuse
        for steps in (int(s) for s in args.steps.split(",")):
            runs[steps] = [timeline(client, steps + k) for k in range(args.repeats)]
    finally:
        server.close()
    print(f"{PHOTO.name} through /explain, MA-GIG + GIG, 64 px; median of {args.repeats} runs (s)\n")
    print("| points | end to end | estimated | walks end | maps after walks | scores after walks | "
          "files after walks | run ends after walks |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for steps, rows in runs.items():
        after = {key: statistics.median(r[key] - r["walks"] for r in rows) for key in ("maps", "scores", "files",
                                                                                           "done")}
        print(f"| {steps} | {statistics.median(r['done'] for r in rows):.2f} | "
              f"{statistics.median(r['estimated'] for r in rows):.1f} | "
              f"{statistics.median(r['walks'] for r in rows):.2f} | {after['maps']:+.2f} | {after['scores']:+.2f} | "
              f"{after['files']:+.2f} | {after['done']:+.2f} |")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in runs.items()}, indent=2))


if __name__ == "__main__":
    main()
