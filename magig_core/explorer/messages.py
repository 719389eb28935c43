"""What a visitor is told when a request fails: what went wrong, in one sentence, and what to do about it.

Every failure a front end can meet maps to a title and a message, including the ones nobody anticipated,
so a visitor never sees a framework's generic "the app raised an exception" and a script gets the same
text as the web page.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from magig_core.errors import MagigError
from magig_core.explorer.cancel import RunCancelled
from magig_core.explorer.catalog import ModelUnavailableError
from magig_core.explorer.settings import SettingsError
from magig_core.images import ImageInputError

DETAIL_CHARS = 200  # an unexpected error's own text is cut here: a hint, not a traceback


@dataclass(frozen=True)
class UserMessage:
    title: str
    text: str
    unexpected: bool = False  # a bug or a failing machine rather than bad input: worth a server-side traceback


def user_message(err: BaseException) -> UserMessage:
    """What to show for a failed request; the text always ends with what to do next."""
    zero = zero_gpu_message(err)
    if zero is not None:
        return zero
    if isinstance(err, (ImageInputError, SettingsError, ModelUnavailableError)):
        return UserMessage("Error", str(err))
    if isinstance(err, RunCancelled):
        return UserMessage("Cancelled", f"{err} Press Run to start again.")
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return UserMessage("Out of memory", "Out of GPU memory: lower the steps or the working resolution, select "
                           "fewer methods, or try again when the server is less busy.", unexpected=True)
    if isinstance(err, MemoryError):
        return UserMessage("Out of memory", "The server ran out of memory: use a smaller image or working "
                           "resolution, fewer methods or steps, or try again when the server is less busy.",
                           unexpected=True)
    if isinstance(err, (ValueError, MagigError)):  # the engine's own checks of a method/setting combination
        return UserMessage("Error", f"These settings cannot be run: {_detail(err)} Change them and press Run again.")
    return UserMessage("Unexpected error", f"Something went wrong on the server ({type(err).__name__}: "
                       f"{_detail(err)}). Try again; if it keeps happening, reload the page or choose other "
                       "settings.", unexpected=True)


def zero_gpu_message(err: BaseException) -> UserMessage | None:
    """What to tell a visitor when ZeroGPU itself refused or ended a run (its errors carry a "ZeroGPU …" title)."""
    title = str(getattr(err, "title", "") or "")
    if not title.startswith("ZeroGPU"):
        return None
    said = " ".join(str(getattr(err, "message", err)).split())
    if "quota" in title or "credits" in title:
        return UserMessage("GPU quota", f"ZeroGPU: {said} Log in to Hugging Face for a larger daily GPU quota, "
                           "wait until it refills, or choose fewer steps or methods, which ask for less GPU time.")
    if "duration" in title:
        return UserMessage("GPU time", f"ZeroGPU: {said} Choose fewer steps or methods or a smaller working "
                           "resolution, so the run asks for less GPU time.")
    if "aborted" in said.lower():
        return UserMessage("GPU run stopped", "The GPU worker stopped before the run finished (it ran past "
                           "the GPU time it asked for, or crashed). Press Run again; fewer steps or methods "
                           "finish sooner.", unexpected=True)
    if "worker" in title:
        return UserMessage("GPU run failed", f"The run failed in the GPU worker ({said}). Press Run again; if "
                           "it keeps failing, choose other settings.", unexpected=True)
    return UserMessage("No GPU", f"ZeroGPU: {said} No GPU could be had for this run: try again in a minute.")


def _detail(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no details"
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
