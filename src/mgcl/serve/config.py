"""What `mgcl serve` is started with, checked before anything is loaded.

Binding to an address other than loopback without a token is refused: the service accepts
uploads and writes models, so on a network it must know who is asking.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from mgcl.errors import MgclError
from mgcl.util.threads import available_cpus

#: Names a model folder may have: letters, digits, ``.``, ``_``, ``-``; 1 to 64 characters.
NAME_PATTERN = r"[A-Za-z0-9._-]{1,64}"

#: The environment variable that holds the token when ``--token`` is not given.
TOKEN_ENV = "MGCL_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8, ``::1``."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """Options of the service (``mgcl serve --help`` explains each).

    ``max_upload_mb``: bytes of one request's body, in MiB (413 past it, while streaming);
    ``max_seconds``: decoded duration of one uploaded clip (422 past it); ``workers``:
    inference threads; ``queue``: requests waiting for a worker before 503; ``threads``:
    torch threads per worker (0: the CPUs divided among the workers); ``model_cache``:
    models kept loaded (least recently used is dropped); ``batch_size``: clips per backbone
    forward (the files of one request go through together).
    """

    models: Path
    host: str = "127.0.0.1"
    port: int = 8000
    backbone: str = "aisfx"
    backbone_options: dict | None = None
    store: Path | None = None
    token: str | None = None
    max_upload_mb: float = 20.0
    max_seconds: float = 600.0
    workers: int = 1
    queue: int = 16
    threads: int = 0
    model_cache: int = 8
    batch_size: int = 16
    cors: tuple[str, ...] = ()
    default_method: str = "mgcl"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def torch_threads(self) -> int:
        """Torch threads per worker: ``threads``, else the CPUs shared among the workers."""
        return self.threads if self.threads > 0 else max(1, available_cpus() // max(1, self.workers))

    def check(self) -> ServeConfig:
        """One-line MgclError for an unusable option; returns self. The token falls back to
        ``$MGCL_TOKEN``."""
        if not self.token:
            self.token = os.environ.get(TOKEN_ENV) or None
        if not is_loopback(self.host) and not self.token:
            raise MgclError(
                f"--host {self.host} is reachable from other machines: give a token "
                f"(--token or ${TOKEN_ENV}) or bind to 127.0.0.1"
            )
        for name, value, low in (
            ("--max-upload-mb", self.max_upload_mb, 0),
            ("--max-seconds", self.max_seconds, 0),
        ):
            if not value > low:
                raise MgclError(f"{name} must be positive, got {value}")
        for name, value in (
            ("--workers", self.workers),
            ("--queue", self.queue),
            ("--model-cache", self.model_cache),
            ("--batch-size", self.batch_size),
        ):
            if int(value) < 1:
                raise MgclError(f"{name} must be at least 1, got {value}")
        if self.threads < 0:
            raise MgclError(f"--threads must be 0 (automatic) or more, got {self.threads}")
        if not 0 <= int(self.port) <= 65535:
            raise MgclError(f"--port must be 0-65535, got {self.port}")
        self.models = Path(self.models).expanduser()
        if self.models.exists() and not self.models.is_dir():
            raise MgclError(f"--models {self.models}: exists and is not a folder")
        return self
