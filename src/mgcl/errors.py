"""Exceptions whose message is one line a user can act on.

The CLI prints ``str(error)`` of any :class:`MgclError` and exits non-zero; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class MgclError(Exception):
    """Base class for errors caused by the user's input or environment."""


class AudioError(MgclError):
    """An audio file (or in-memory waveform) that cannot be used.

    ``str(error)`` is ``"<source>: <reason>"``.
    """

    def __init__(self, source: str, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class ManifestError(MgclError):
    """A manifest CSV that is missing, malformed or names unusable rows."""


class BackboneError(MgclError):
    """An unknown backbone name, missing weights, or a capability the backbone lacks."""


class InputsFailed(MgclError):
    """Some inputs of a batch could not be used where all of them must be (a support set).

    ``errors`` maps each failed input's index to its one-line reason; ``str(error)`` is one line.
    """

    def __init__(self, message: str, errors: dict[int, str]):
        self.errors = dict(errors)
        super().__init__(message)


class NotFittedError(MgclError, ValueError):
    """A model used before ``fit`` (mirrors scikit-learn's exception of the same name)."""
