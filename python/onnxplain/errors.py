"""Exceptions and warnings with messages meant for users."""
from __future__ import annotations

import warnings


class OnnxplainError(ValueError):
    """Bad input: a wrong image, model, argument or file. The message names the problem."""


class OnnxplainWarning(UserWarning):
    """A valid but weak answer (a tiny budget, an upscaled image, a vacuous criterion, ...)."""


def warn(message: str) -> str:
    """Issues `message` as an OnnxplainWarning (attributed to the caller's caller) and returns it."""
    warnings.warn(message, OnnxplainWarning, stacklevel=3)
    return message
