"""The service's errors: an :class:`~mgcl.errors.MgclError` with the HTTP status it answers.

The HTTP layer turns each into ``{"detail": "<one line>"}`` with ``status``; nothing else of
an exception (no stack trace, no server path) reaches a client.
"""

from __future__ import annotations

from mgcl.errors import MgclError


class ServeError(MgclError):
    """A request the service refuses, with its HTTP status (and headers, e.g. ``Retry-After``)."""

    status = 400

    def __init__(self, message: str, status: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        if status is not None:
            self.status = int(status)
        self.headers = dict(headers or {})


class BadRequest(ServeError):
    """A malformed request: a bad model name, a path outside the models folder, a bad option."""

    status = 400


class NotFound(ServeError):
    """No such model or job."""

    status = 404


class Conflict(ServeError):
    """The model exists already, or was fitted on another backbone than the served one."""

    status = 409


class TooLarge(ServeError):
    """An upload past ``--max-upload-mb``."""

    status = 413


class BadAudio(ServeError):
    """An upload that is not usable audio (the one-line reason mgcl gives), or too long."""

    status = 422


class Busy(ServeError):
    """The work queue is full: try again after ``Retry-After`` seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))
