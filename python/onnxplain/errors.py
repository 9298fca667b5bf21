"""Exceptions with messages meant for users."""


class OnnxplainError(ValueError):
    """Bad input: a wrong image, model, argument or file. The message names the problem."""
