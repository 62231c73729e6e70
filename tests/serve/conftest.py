"""Fixtures of the service tests: WAV bytes, a service on the counting test backbone with a
fitted model (module scope), and a live uvicorn server on 127.0.0.1 with the real aisfx
backbone (session scope, shared by the browser and load tests)."""

from __future__ import annotations

import importlib.util
import io
import os
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import CountingBackbone, aisfx_or_skip, tone


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(module: str, why: str = 'pip install -e ".[serve,serve-test]"') -> None:
    """Skip (locally) or fail (in CI, where every extra is installed) without ``module``."""
    if importlib.util.find_spec(module) is None:
        msg = f"{module} is not installed ({why})"
        if in_ci():
            pytest.fail(msg + " - CI installs it; nothing is skipped silently there")
        pytest.skip(msg)


def wav_bytes(samples: np.ndarray, sr: int = 8000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def noise(seconds: float, sr: int, seed: int = 0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.random.default_rng(seed).uniform(-1, 1, int(seconds * sr))).astype(np.float32)


def support_files(sr: int = 8000, n: int = 3, seconds: float = 1.0) -> tuple[list, list[str]]:
    """Multipart ``files`` of a low tone and a high tone class, and their labels."""
    files = [("files", (f"low{i}.wav", wav_bytes(tone(300, seconds, sr, seed=i), sr), "audio/wav")) for i in range(n)]
    files += [
        ("files", (f"high{i}.wav", wav_bytes(tone(2500, seconds, sr, seed=i), sr), "audio/wav")) for i in range(n)
    ]
    return files, ["low"] * n + ["high"] * n


def make_service(tmp_path, backbone=None, **options):
    from mgcl.serve import ServeConfig
    from mgcl.serve.service import Service

    config = ServeConfig(models=tmp_path / "models", store=tmp_path / "store", **options)
    return Service(config, backbone=backbone if backbone is not None else CountingBackbone())


def client_for(service):
    need("fastapi")
    need("httpx")
    from fastapi.testclient import TestClient

    from mgcl.serve.app import create_app

    return TestClient(create_app(service), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(service, client) on the counting backbone with model 'tones' (prototype) fitted."""
    need("fastapi")
    need("httpx")
    service = make_service(tmp_path_factory.mktemp("serve"))
    client = client_for(service)
    files, labels = support_files()
    r = client.post("/models?wait=true", data={"name": "tones", "labels": labels, "method": "prototype"}, files=files)
    assert r.status_code == 201, r.text
    yield service, client
    service.close()


# ----------------------------------------------------------------------------- a live server
class LiveServer:
    """uvicorn serving ``service`` in a thread on a pre-bound 127.0.0.1 socket."""

    def __init__(self, service):
        import uvicorn

        from mgcl.serve.app import create_app

        self.service = service
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(service), log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        self.service.close()


@pytest.fixture(scope="session")
def live_aisfx(tmp_path_factory):
    """A live server with the real aisfx backbone on 127.0.0.1 (models and store in tmp)."""
    need("fastapi")
    need("uvicorn")
    need("httpx")
    aisfx_or_skip()
    base = tmp_path_factory.mktemp("live")
    from mgcl.pipeline import make_backbone

    service = make_service(base, backbone=make_backbone("aisfx"), queue=64)
    with LiveServer(service) as live:
        yield live
