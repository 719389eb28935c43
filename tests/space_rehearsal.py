"""Rehearse a push to a Hugging Face Space, as CI does before the tests (``.ci/run``).

1. The file set a push sends: the files of the commit (``git archive HEAD``). Fails on a file over 10 MB or a
   binary file without a Git LFS rule (the Hub refuses both).
2. Runs with the Python of an environment made from ``requirements.txt`` alone, as a Space's is: a module
   that imports a test or development package fails to start here. Fails if pytest is importable (the check
   would prove nothing).
3. Starts ``app.py`` from that file set with the variables a ZeroGPU Space sets (``SYSTEM=spaces``,
   ``SPACE_ID``, ``SPACE_HOST``, ``SPACES_ZERO_GPU`` through ``tests/zerogpu.py``, which emulates the GPU
   scheduler and its forked worker), offline, with an empty model cache.
4. Through ``gradio_client``: explains a gallery photograph with MA-GIG and GIG and checks both maps came
   back, and checks that a share link points at the Space's page.

``python tests/space_rehearsal.py [--any-environment]`` (the flag skips step 2's check, for a development
environment).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 10 * 1024 * 1024
SPACE_ID = "magig/ma-gig-explorer"
PHOTO = Path("assets") / "photos" / "chelsea_cat.jpg"
START_TIMEOUT_S = 300
RUN_TIMEOUT_S = 300


def pushed_files(target: Path) -> list[Path]:
    """Unpack the commit's files (what ``git push`` sends) into ``target``; returns their relative paths."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO, capture_output=True,
                             check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
        return [Path(member.name) for member in tar.getmembers() if member.isfile()]


def refusals(root: Path, files: list[Path]) -> list[str]:
    """What the Hub would refuse: files over 10 MB, binary files (NUL in the first 8000 bytes) without LFS."""
    problems = [f"{path} is over 10 MB" for path in files if (root / path).stat().st_size > MAX_FILE_BYTES]
    binaries = [str(path) for path in files if b"\0" in (root / path).read_bytes()[:8000]]
    if not binaries:
        return [*problems, "no binary file found: the bundled weights and images are missing"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)  # to read the pushed .gitattributes as git does
    attributes = subprocess.run(["git", "check-attr", "filter", "--stdin"], cwd=root, input="\n".join(binaries),
                                capture_output=True, text=True, check=True).stdout.splitlines()
    problems += [f"{line.split(':')[0]} is binary but has no LFS rule in .gitattributes"
                 for line in attributes if not line.endswith(": filter: lfs")]
    return problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def space_environment(port: int, home: Path) -> dict[str, str]:
    owner, name = SPACE_ID.split("/")
    keep = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return keep | {
        "HOME": str(home), "HF_HOME": str(home / "huggingface"), "TORCH_HOME": str(home / "torch"),
        "SYSTEM": "spaces", "SPACE_ID": SPACE_ID, "SPACE_AUTHOR_NAME": owner, "SPACE_REPO_NAME": name,
        "SPACE_TITLE": "MA-GIG Explorer", "SPACE_HOST": f"{owner}-{name}.hf.space",
        "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1",
    }


def rehearse(root: Path, home: Path) -> list[str]:
    """Start the app from ``root`` as a ZeroGPU Space and drive it; returns what went wrong."""
    from gradio_client import Client, handle_file  # a dependency of gradio: installed with requirements.txt

    port = free_port()
    log = (home / "app.log").open("w")
    app = subprocess.Popen([sys.executable, "tests/zerogpu.py", "app.py"], cwd=root,
                           env=space_environment(port, home), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        client = None
        deadline = time.monotonic() + START_TIMEOUT_S
        while client is None:
            if app.poll() is not None:
                return [f"app.py exited with {app.returncode} at start-up:\n{_tail(home)}"]
            if time.monotonic() > deadline:
                return [f"app.py did not answer within {START_TIMEOUT_S} s:\n{_tail(home)}"]
            try:
                client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
            except Exception:  # not listening yet
                time.sleep(1)
        started = time.monotonic()
        job = client.submit(image=handle_file(str(root / PHOTO)), classifier="cifar10-resnet56",
                            autoencoder="taef2", methods=["ma-gig", "gig"], steps=8, size="64",
                            api_name="/explain")
        try:
            maps = job.result(timeout=RUN_TIMEOUT_S)[0]
        except Exception as err:  # the app's message, e.g. a pickling failure in the GPU worker
            return [f"explaining {PHOTO} failed: {err}\n{_tail(home)}"]
        captions = " ".join(item.get("caption") or "" for item in maps)
        problems = [] if "MA-GIG" in captions and "GIG" in captions.replace("MA-GIG", "") else [
            f"the run did not return maps for MA-GIG and GIG (captions: {captions!r})"]
        print(f"explained {PHOTO} with MA-GIG and GIG under the emulated ZeroGPU worker in "
              f"{time.monotonic() - started:.1f} s")
        link = client.predict(image=handle_file(str(root / PHOTO)), methods=["ma-gig", "gig"], steps=8,
                              api_name="/share_link")
        if not str(link).startswith(f"https://huggingface.co/spaces/{SPACE_ID}?"):
            problems.append(f"the share link does not point at the Space's page: {link!r}")
        return problems
    finally:
        app.terminate()
        app.wait(30)
        log.close()


def _tail(home: Path) -> str:
    return (home / "app.log").read_text(errors="replace")[-4000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--any-environment", action="store_true",
                        help="run even if test packages are installed (no check of run-time imports)")
    args = parser.parse_args()
    if not args.any_environment and importlib.util.find_spec("pytest") is not None:
        print("error: run this with an environment made from requirements.txt alone (pytest is installed)")
        return 1
    with tempfile.TemporaryDirectory(prefix="space-rehearsal-") as folder:
        root, home = Path(folder) / "space", Path(folder) / "home"
        home.mkdir()
        files = pushed_files(root)
        problems = refusals(root, files)
        print(f"{len(files)} files, {sum((root / f).stat().st_size for f in files) / 2**20:.1f} MB in all")
        if not problems:
            problems = rehearse(root, home)
    for problem in problems:
        print(f"error: {problem}")
    print("Space rehearsal " + ("failed" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
