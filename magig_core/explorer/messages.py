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


def _detail(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no details"
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
