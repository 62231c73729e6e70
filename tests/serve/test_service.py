"""The service's parts without HTTP: start-up checks, the command, names, uploads, the
worker pool's bound and batching."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from mgcl.cli import main
from mgcl.errors import MgclError
from mgcl.serve import ServeConfig, is_loopback
from mgcl.serve.errors import BadRequest, Busy
from mgcl.serve.models import check_name
from mgcl.serve.uploads import Upload, decoded_seconds_over, public_reason, safe_filename
from mgcl.serve.work import WorkerPool
from tests.conftest import tone
from tests.serve.conftest import need, wav_bytes


def test_public_address_needs_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("MGCL_TOKEN", raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
    with pytest.raises(MgclError, match="give a token"):
        ServeConfig(models=tmp_path, host="0.0.0.0").check()
    assert ServeConfig(models=tmp_path, host="0.0.0.0", token="t").check().token == "t"
    monkeypatch.setenv("MGCL_TOKEN", "from-env")
    assert ServeConfig(models=tmp_path, host="0.0.0.0").check().token == "from-env"


def test_an_unusable_default_method_is_refused(tmp_path):
    from tests.serve.conftest import make_service

    with pytest.raises(MgclError, match="zero_shot: not a method"):
        make_service(tmp_path, default_method="zero_shot")  # needs text; the test backbone has none


def test_the_command_refuses_a_public_address_without_a_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MGCL_TOKEN", raising=False)
    assert main(["serve", "--models", str(tmp_path), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "give a token" in err and len(err.strip().splitlines()) == 1


def test_the_command_without_the_extra_says_what_to_install(tmp_path, monkeypatch, capsys):
    import mgcl.cli.serve as cmd

    monkeypatch.setattr(cmd, "missing_extra", lambda: ["fastapi", "uvicorn"])
    assert main(["serve", "--models", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install "mgcl[serve]"' in err


def test_mgcl_does_not_import_the_web_framework():
    code = (
        "import mgcl, mgcl.cli, mgcl.serve.app, sys; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'multipart') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["ok", "a.b-c_D9", "x" * 64])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", ".hidden", "a/b", "../x", "a b", "x" * 65, "é", "a\\b", "a\x00"])
def test_bad_names(name):
    with pytest.raises(BadRequest):
        check_name(name)


def test_uploaded_names_are_made_safe():
    assert safe_filename("../../etc/passwd", 0) == "passwd"
    assert safe_filename("C:\\Users\\me\\dog bark.wav", 1) == "dog bark.wav"
    assert safe_filename("", 2) == "upload-2" and safe_filename("..", 3) == "upload-3"
    assert safe_filename("a;rm -rf $(x).wav", 4) == "a_rm -rf _(x).wav"


def test_reasons_lose_the_server_path(tmp_path):
    p = tmp_path / "0" / "dog.wav"
    u = Upload("dog.wav", p)
    assert public_reason(f"{p}: empty file (0 bytes)", u) == "empty file (0 bytes)"
    assert str(tmp_path) not in public_reason(f"failed on {p} in {tmp_path}/0", u)


def test_decoded_duration(tmp_path):
    p = tmp_path / "a.wav"
    p.write_bytes(wav_bytes(tone(300, 2.0, 8000)))
    assert decoded_seconds_over(p, 3.0) is None
    assert decoded_seconds_over(p, 1.0) == pytest.approx(2.0)
    p.write_bytes(b"junk")
    assert decoded_seconds_over(p, 1.0) is None  # the pipeline says why


def test_pool_is_bounded_and_batches_waiting_jobs_of_one_key():
    pool = WorkerPool(workers=1, queue_size=3)
    started, release = threading.Event(), threading.Event()
    blocker = pool.submit(lambda: (started.set(), release.wait(30)))
    assert started.wait(10)
    seen = []

    def run_many(items):
        seen.append(list(items))
        return [ValueError("odd") if x % 2 else x * 10 for x in items]

    futures = [pool.submit_batchable("k", x, run_many, size=1) for x in (2, 3, 4)]
    with pytest.raises(Busy) as exc:
        pool.submit(lambda: None)
    assert exc.value.status == 503 and exc.value.headers["Retry-After"].isdigit()
    release.set()
    blocker.result(10)
    assert futures[0].result(10) == 20 and futures[2].result(10) == 40
    with pytest.raises(ValueError):
        futures[1].result(10)
    assert seen == [[2, 3, 4]]  # one run for the three waiting requests


def test_a_batch_waits_for_a_request_still_arriving_but_not_for_nobody():
    pool = WorkerPool(workers=1, queue_size=8, linger=5.0)
    seen = []

    def run_many(items):
        seen.append(list(items))
        return list(items)

    pool.arriving("k", +1)  # a second request is being received
    first = pool.submit_batchable("k", 1, run_many)
    time.sleep(0.2)
    assert not first.done()  # the worker waits for it ...
    second = pool.submit_batchable("k", 2, run_many, arrived=True)
    assert first.result(10) == 1 and second.result(10) == 2
    assert seen == [[1, 2]]  # ... and runs both at once
    t0 = time.monotonic()
    assert pool.submit_batchable("k", 3, run_many).result(10) == 3  # nobody arriving: no wait
    assert time.monotonic() - t0 < 2.0
    assert pool.stats()["mean_batch"] == 1.5


def test_mgcl_serve_starts_and_serves_the_page(tmp_path):
    """The command as a user runs it (tiny random CLAP: no download), on a free loopback port."""
    need("fastapi")
    need("uvicorn")
    need("httpx")
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "mgcl.cli", "serve", "--models", str(tmp_path / "m"), "--port", str(port)]
    cmd += ["--backbone", "clap-tiny-random", "--store", str(tmp_path / "store")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()[-2000:]
            assert time.monotonic() < deadline, "mgcl serve did not answer within 90 s"
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        page = httpx.get(url + "/", timeout=10)
        assert page.status_code == 200 and "Build a classifier" in page.text
        assert httpx.get(url + "/info", timeout=10).json()["backbone"]["name"] == "clap-tiny-random"
        assert httpx.get(url + "/models", timeout=10).json() == {"models": []}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"open http://127.0.0.1:{port}/" in out
