"""Hugging Face hub ids and an offline machine: fail in a second with the way out, instead of
retrying for half a minute. (Loading itself stays with transformers' ``from_pretrained``.)"""

from __future__ import annotations

import os
import socket
import urllib.parse

OFFLINE_HELP = (
    "download it where there is network (e.g. `huggingface-cli download ID --local-dir DIR`, or "
    "run once with network to fill ~/.cache/huggingface) and pass --checkpoint DIR; see docs/offline.md"
)


def is_hub_id(name: str) -> bool:
    """'name' or 'org/name' that is not an existing folder or a path (/, ., ~, backslash)."""
    parts = name.split("/")
    return (
        1 <= len(parts) <= 2
        and all(parts)
        and not name.startswith((".", "~", "/"))
        and "\\" not in name
        and not os.path.isdir(os.path.expanduser(name))
    )


def offline() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set to a true value."""
    return any(
        os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub ($HF_ENDPOINT, default huggingface.co:443) opens."""
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def in_local_cache(repo_id: str, filename: str = "config.json") -> bool:
    """Whether the local Hugging Face cache holds ``filename`` of ``repo_id`` (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache  # a dependency of transformers
    except ImportError:  # pragma: no cover - transformers always brings it
        return False
    found = try_to_load_from_cache(repo_id, filename)
    return isinstance(found, str)


def unreachable_reason(repo_id: str) -> str | None:
    """Why ``repo_id`` cannot be fetched right now (offline mode or no route to the hub, and
    not in the local cache), or None when loading may go ahead."""
    if not is_hub_id(repo_id) or in_local_cache(repo_id):
        return None
    if offline():
        return f"'{repo_id}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    if not hub_reachable():
        return f"the Hugging Face hub is unreachable (no network?) and '{repo_id}' is not in the local cache"
    return None
