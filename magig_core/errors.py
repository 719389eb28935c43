"""The package's exceptions share one base, so a caller can catch everything the package reports.

Policy: an argument of the wrong type raises a ``TypeError`` subclass, a value that cannot be used a
``ValueError`` subclass; missing resources (weights, files) and stops have their own classes. Every
message says what to do.
"""

from __future__ import annotations


class MagigError(Exception):
    """Base of every error MA-GIG Explorer raises on purpose."""


class ArgumentError(MagigError, ValueError):
    """An argument value that cannot be used (out of range, unknown name, wrong shape)."""


class ArgumentTypeError(MagigError, TypeError):
    """An argument of the wrong type."""
