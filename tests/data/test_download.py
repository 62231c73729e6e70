"""`mgcl data download`: resume, restart, retries, checksums, safe extraction, the CLI.

Everything runs against a local HTTP server on 127.0.0.1 (started here, port 0) serving
small archives built by the tests; no internet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import tarfile
import threading
import wave
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import mgcl.data.download as dl
from mgcl.cli import main
from mgcl.data.catalog import CATALOG, Archive, Entry, get_entry, load_dataset
from mgcl.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download,
    extract,
    fetch_dataset,
    is_extracted,
    marker_path,
    part_path,
)
from mgcl.data.layouts import load_folders


# --------------------------------------------------------------------------- fixtures
def wav_bytes(seed: int, n: int = 16000, sr: int = 16000) -> bytes:
    """A 16-bit mono WAV of white noise (incompressible, so archives keep their size)."""
    samples = (np.random.default_rng(seed).uniform(-0.5, 0.5, n) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


FILES = {
    "tiny/audio/a.wav": wav_bytes(0),
    "tiny/audio/b.wav": wav_bytes(1),
    "tiny/meta/tiny.csv": b"filename,fold,category\na.wav,1,dog\nb.wav,2,siren\n",
}


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(files: dict[str, bytes], mode: str = "w:gz", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


ZIP = make_zip(FILES)
TGZ = make_tar(FILES)
MD5 = hashlib.md5(ZIP).hexdigest()


class ServerState:
    def __init__(self):
        self.files: dict[str, bytes] = {"/tiny.zip": ZIP, "/tiny.tar.gz": TGZ}
        self.honour_range = True
        self.drop_after: int | None = None  # first response only: close after this many bytes
        self.fail_first: list[int] = []  # HTTP statuses answered before serving normally
        self.stall_after: int | None = None  # first response only: send this many bytes, then hang
        self.release = threading.Event()  # ends a hang
        self.requests: list[tuple[str, str | None]] = []
        self.sent = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        st: ServerState = self.server.state
        with st.lock:
            st.requests.append((self.path, self.headers.get("Range")))
            if st.fail_first:
                code = st.fail_first.pop(0)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            drop, st.drop_after = st.drop_after, None
            stall, st.stall_after = st.stall_after, None
        body = st.files.get(self.path.split("?")[0])
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and st.honour_range:
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes" if st.honour_range else "none")
        self.end_headers()
        if stall is not None:  # a server that stops sending without closing the connection
            self.wfile.write(body[start : start + stall])
            self.wfile.flush()
            with st.lock:
                st.sent += stall
            st.release.wait(5)
            return
        payload = body[start:] if drop is None else body[start : start + drop]
        with st.lock:  # counted before writing, so the client never sees bytes not yet counted
            st.sent += len(payload)
        self.wfile.write(payload)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.state = ServerState()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield base, httpd.state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def sleeps(monkeypatch):
    """Record the back-off delays instead of sleeping."""
    calls: list[float] = []
    monkeypatch.setattr(dl, "_sleep", calls.append)
    return calls


# --------------------------------------------------------------------------- download
def test_interrupted_download_resumes_with_range(tmp_path, server, sleeps):
    base, st = server
    st.drop_after = len(ZIP) // 3
    seen = []
    dest = download(
        f"{base}/tiny.zip",
        tmp_path / "tiny.zip",
        md5=MD5,
        timeout=5,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert dest.read_bytes() == ZIP
    assert not part_path(dest).exists()
    assert [r for _, r in st.requests] == [None, f"bytes={len(ZIP) // 3}-"]
    assert st.sent == len(ZIP) < 2 * len(ZIP)  # the first third was not sent twice
    assert len(sleeps) == 1
    assert seen[-1] == (len(ZIP), len(ZIP))
    assert seen[0] == (0, len(ZIP))  # the total came from Content-Length ...
    assert (len(ZIP) // 3, len(ZIP)) in seen  # ... and, on resume, from Content-Range


def test_stalled_connection_times_out_and_resumes(tmp_path, server, sleeps):
    base, st = server
    st.stall_after = 5000
    try:
        download(f"{base}/tiny.zip", tmp_path / "tiny.zip", md5=MD5, timeout=0.3, progress=False)
    finally:
        st.release.set()
    assert (tmp_path / "tiny.zip").read_bytes() == ZIP
    assert [r for _, r in st.requests] == [None, "bytes=5000-"]
    assert len(sleeps) == 1


def test_existing_part_file_is_resumed(tmp_path, server, sleeps):
    base, st = server
    n = len(ZIP) - 1000
    part_path(tmp_path / "tiny.zip").write_bytes(ZIP[:n])  # left by a killed earlier run
    download(f"{base}/tiny.zip", tmp_path / "tiny.zip", md5=MD5, timeout=5, progress=False)
    assert (tmp_path / "tiny.zip").read_bytes() == ZIP
    assert st.requests == [("/tiny.zip", f"bytes={n}-")]
    assert st.sent == 1000
    assert sleeps == []


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, sleeps):
    base, st = server
    st.honour_range = False
    st.drop_after = len(ZIP) // 2
    logs = []
    download(f"{base}/tiny.zip", tmp_path / "tiny.zip", md5=MD5, timeout=5, progress=False, log=logs.append)
    assert (tmp_path / "tiny.zip").read_bytes() == ZIP  # not the first half twice
    assert st.requests[1][1] == f"bytes={len(ZIP) // 2}-"  # it asked to resume ...
    assert st.sent == len(ZIP) // 2 + len(ZIP)  # ... and took the whole body again
    assert any("does not support resuming" in m for m in logs)


def test_checksum_mismatch_keeps_part_and_uses_nothing(tmp_path, server, sleeps):
    base, st = server
    dest = tmp_path / "tiny.zip"
    with pytest.raises(ChecksumError) as e:
        download(f"{base}/tiny.zip", dest, md5="0" * 32, timeout=5, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "md5" in msg and MD5 in msg and "0" * 32 in msg and ".part" in msg
    assert not dest.exists()
    assert part_path(dest).read_bytes() == ZIP
    # A re-check does not download the body again (the server says 416: complete) ...
    sent = st.sent
    with pytest.raises(ChecksumError):
        download(f"{base}/tiny.zip", dest, md5="0" * 32, timeout=5, progress=False)
    assert st.sent == sent and st.requests[-1][1] == f"bytes={len(ZIP)}-"
    assert not dest.exists()
    # ... and with the right checksum the kept bytes are verified and put in place.
    download(f"{base}/tiny.zip", dest, md5=MD5, timeout=5, progress=False)
    assert dest.read_bytes() == ZIP and st.sent == sent and not part_path(dest).exists()


def test_sha256_is_verified_too(tmp_path, server, sleeps):
    base, _ = server
    with pytest.raises(ChecksumError, match="sha256"):
        download(f"{base}/tiny.zip", tmp_path / "a.zip", sha256="f" * 64, timeout=5, progress=False)
    good = hashlib.sha256(ZIP).hexdigest()
    assert download(f"{base}/tiny.zip", tmp_path / "b.zip", sha256=good, progress=False).read_bytes() == ZIP


def test_5xx_is_retried_with_backoff_then_gives_up(tmp_path, server, sleeps):
    base, st = server
    st.fail_first = [503, 502]
    download(f"{base}/tiny.zip", tmp_path / "ok.zip", md5=MD5, timeout=5, backoff=1.0, progress=False)
    assert (tmp_path / "ok.zip").read_bytes() == ZIP
    assert sleeps == [1.0, 2.0]  # exponential back-off
    st.fail_first = [503, 503, 503]
    with pytest.raises(DownloadError, match="HTTP 503.*gave up after 2 retries"):
        download(f"{base}/tiny.zip", tmp_path / "no.zip", retries=2, timeout=5, progress=False)
    assert not (tmp_path / "no.zip").exists()


def test_404_fails_at_once(tmp_path, server, sleeps):
    base, st = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{base}/missing.zip", tmp_path / "m.zip", timeout=5, progress=False)
    assert sleeps == [] and len(st.requests) == 1


def test_unreachable_host_is_retried_then_reported(tmp_path, sleeps):
    with pytest.raises(DownloadError, match="cannot connect|connection failed"):
        download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", retries=2, timeout=2, progress=False)
    assert len(sleeps) == 2


def test_verified_final_file_is_not_fetched_again(tmp_path, server, sleeps):
    base, st = server
    (tmp_path / "tiny.zip").write_bytes(ZIP)
    download(f"{base}/tiny.zip", tmp_path / "tiny.zip", md5=MD5, progress=False)
    assert st.requests == []
    (tmp_path / "bad.zip").write_bytes(b"corrupt")
    with pytest.raises(ChecksumError, match="delete it"):
        download(f"{base}/tiny.zip", tmp_path / "bad.zip", md5=MD5, progress=False)


# --------------------------------------------------------------------------- extract
@pytest.mark.parametrize(
    "name,data",
    [
        pytest.param(n, d, id=n)
        for n, d in [
            ("tiny.zip", ZIP),
            ("tiny.tar.gz", TGZ),
            ("tiny.tar.bz2", make_tar(FILES, "w:bz2")),
            ("tiny.tar.xz", make_tar(FILES, "w:xz")),
        ]
    ],
)
def test_extract_zip_and_tar(tmp_path, name, data):
    archive = tmp_path / name
    archive.write_bytes(data)
    out = extract(archive, tmp_path / "out", progress=False)
    for rel, content in FILES.items():
        assert (out / rel).read_bytes() == content
    assert is_extracted(out, name)
    assert not list(out.glob(".*extracting*"))  # the temporary folder is gone


def test_extraction_is_skipped_the_second_time(tmp_path):
    archive = tmp_path / "tiny.zip"
    archive.write_bytes(ZIP)
    out = tmp_path / "out"
    extract(archive, out, checksum=f"md5:{MD5}", progress=False)
    (out / "tiny/audio/a.wav").unlink()
    logs = []
    extract(archive, out, checksum=f"md5:{MD5}", progress=False, log=logs.append)
    assert not (out / "tiny/audio/a.wav").exists()  # skipped: nothing was rewritten
    assert any("already extracted" in m for m in logs)
    extract(archive, out, checksum="md5:" + "1" * 32, progress=False)  # another archive version
    assert (out / "tiny/audio/a.wav").read_bytes() == FILES["tiny/audio/a.wav"]


@pytest.mark.parametrize(
    "name,data",
    [
        pytest.param(n, d, id=n)
        for n, d in [
            ("dotdot.zip", make_zip({"tiny/ok.txt": b"ok", "../evil.txt": b"x"})),
            ("abs.zip", make_zip({"/tmp/evil.txt": b"x"})),
            ("dotdot.tar.gz", make_tar({"tiny/ok.txt": b"ok", "tiny/../../evil.txt": b"x"})),
            ("abs.tar", make_tar({"/evil.txt": b"x"}, "w")),
            ("link.tar.gz", make_tar({"tiny/ok.txt": b"ok"}, links={"tiny/up": "../../.."})),
            ("abslink.tar.gz", make_tar({}, links={"tiny/etc": "/etc"})),
        ]
    ],
)
def test_path_traversal_is_rejected(tmp_path, name, data):
    archive = tmp_path / "in" / name
    archive.parent.mkdir()
    archive.write_bytes(data)
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match="refusing to extract") as e:
        extract(archive, out, progress=False)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert not (out / "tiny").exists()  # nothing was extracted, not even the safe members
    assert not is_extracted(out, name)


def test_interrupted_extraction_never_looks_complete(tmp_path, monkeypatch):
    archive = tmp_path / "tiny.zip"
    archive.write_bytes(ZIP)
    out = tmp_path / "out"
    real_merge = dl._merge

    def crash(src, dest):
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_merge", crash)
    with pytest.raises(KeyboardInterrupt):
        extract(archive, out, progress=False)
    assert not is_extracted(out, "tiny.zip") and not marker_path(out, "tiny.zip").exists()
    assert not (out / "tiny").exists()  # unpacked only in the (removed) temporary folder
    assert not list(out.glob(".*extracting*"))
    monkeypatch.setattr(dl, "_merge", real_merge)
    extract(archive, out, progress=False)
    assert (out / "tiny/meta/tiny.csv").read_bytes() == FILES["tiny/meta/tiny.csv"]


def test_not_an_archive(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not an archive at all")
    with pytest.raises(dl.MgclError, match="not a zip or tar"):
        extract(bad, tmp_path / "out", progress=False)


# --------------------------------------------------------------------------- datasets
def tiny_source(url: str = "http://127.0.0.1:9/tiny.zip", md5: str | None = MD5, **kw) -> Entry:
    return Entry(
        name="tiny",
        title="tiny",
        description="a tiny test set",
        loader=load_folders,
        url="http://example.invalid",
        archives=(Archive(url=url, md5=md5),),
        folder="tiny",
        expect=("meta/tiny.csv", "audio"),
        licence="CC0",
        citation="nobody",
        **kw,
    )


def test_fetch_dataset_downloads_extracts_and_skips(tmp_path, server, sleeps, monkeypatch):
    base, st = server
    monkeypatch.setitem(CATALOG, "tiny", tiny_source(f"{base}/tiny.zip"))
    root = tmp_path / "data"
    path = fetch_dataset("tiny", root, progress=False)
    assert path == root / "tiny"
    assert (path / "audio/b.wav").read_bytes() == FILES["tiny/audio/b.wav"]
    assert not (root / "tiny.zip").exists()  # the archive is deleted after unpacking
    n = len(st.requests)
    assert fetch_dataset("TINY", root, progress=False) == path  # second call: nothing fetched
    assert len(st.requests) == n


def test_fetch_dataset_multi_part_with_mirror_base_and_optional(tmp_path, server, sleeps, monkeypatch):
    base, st = server
    st.files["/mirror/part1.zip"] = make_zip({"multi/audio/a.wav": FILES["tiny/audio/a.wav"]})
    st.files["/mirror/part2.tar.gz"] = make_tar({"multi/meta/m.csv": b"filename\na.wav\n"})
    st.files["/mirror/extra.zip"] = make_zip({"multi/extra/x.txt": b"x"})
    src = Entry(
        name="multi",
        title="multi",
        description="two parts",
        loader=load_folders,
        folder="multi",
        expect=("audio/a.wav", "meta/m.csv"),
        licence="CC0",
        citation="nobody",
        archives=(
            Archive(url="http://127.0.0.1:9/part1.zip"),
            Archive(url="http://127.0.0.1:9/part2.tar.gz"),
            Archive(url="http://127.0.0.1:9/extra.zip", optional=True),
        ),
    )
    monkeypatch.setitem(CATALOG, "multi", src)
    with pytest.raises(dl.MgclError, match="base URL ending in '/'"):
        fetch_dataset("multi", tmp_path, progress=False, url=f"{base}/mirror")
    path = fetch_dataset("multi", tmp_path, progress=False, url=f"{base}/mirror/", keep_archive=True)
    assert (path / "audio/a.wav").exists() and (path / "meta/m.csv").exists()  # merged into one folder
    assert not (path / "extra").exists()  # optional part not fetched by default
    assert (tmp_path / "part1.zip").exists()  # --keep-archive
    fetch_dataset("multi", tmp_path, progress=False, url=f"{base}/mirror/", include_optional=True)
    assert (path / "extra/x.txt").read_bytes() == b"x"
    assert [p for p, _ in st.requests].count("/mirror/part1.zip") == 1


def test_fetch_dataset_falls_back_to_mirror(tmp_path, server, sleeps, monkeypatch):
    base, st = server
    src = tiny_source(f"{base}/gone/tiny.zip")
    src = dataclasses.replace(
        src, archives=(Archive(url=f"{base}/gone/tiny.zip", md5=MD5, mirrors=(f"{base}/tiny.zip",)),)
    )
    monkeypatch.setitem(CATALOG, "tiny", src)
    assert (fetch_dataset("tiny", tmp_path, progress=False) / "meta/tiny.csv").exists()
    assert [p for p, _ in st.requests] == ["/gone/tiny.zip", "/tiny.zip"]


def test_fetch_dataset_reports_unexpected_layout(tmp_path, server, sleeps, monkeypatch):
    base, _ = server
    monkeypatch.setitem(
        CATALOG, "tiny", dataclasses.replace(tiny_source(f"{base}/tiny.zip"), expect=("meta/other.csv",))
    )
    with pytest.raises(dl.MgclError, match="other.csv' is missing.*layout may have changed"):
        fetch_dataset("tiny", tmp_path, progress=False)


def test_manual_dataset_found_when_in_place(tmp_path, monkeypatch):
    monkeypatch.setitem(CATALOG, "tiny", tiny_source(manual="clone it into {dir}"))
    with pytest.raises(dl.ManualStepRequired) as e:
        fetch_dataset("tiny", tmp_path, progress=False)
    assert e.value.instructions == f"clone it into {tmp_path / 'tiny'}"
    (tmp_path / "tiny/meta").mkdir(parents=True)
    (tmp_path / "tiny/meta/tiny.csv").write_text("x")
    (tmp_path / "tiny/audio").mkdir()
    assert fetch_dataset("tiny", tmp_path, progress=False) == tmp_path / "tiny"


def test_catalog_download_entries_are_well_formed():
    downloadable = {name for name, entry in CATALOG.items() if entry.downloadable}
    assert downloadable == set(CATALOG) - {"manifest", "folders"}  # every dataset but the local layouts
    for src in (CATALOG[name] for name in downloadable):
        assert src.licence and src.citation and src.folder
        assert src.manual or src.archives
        for a in src.archives:
            assert a.url.startswith(("https://", "http://")) and a.name
            assert a.md5 is None or re.fullmatch(r"[0-9a-f]{32}", a.md5)
            assert a.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", a.sha256)
    assert get_entry("ESC-50").name == "esc50" and dl.download_entry("us8k").name == "urbansound8k"
    with pytest.raises(dl.MgclError, match="manifest: nothing to download"):
        dl.download_entry("manifest")
    assert CATALOG["urbansound8k"].archives[0].md5 == "9aa69802bbf37fb986f71ec1483a196e"
    assert CATALOG["urbansound8k"].archives[0].name == "UrbanSound8K.tar.gz"
    assert CATALOG["vocalsound"].archives[0].name == "vs_release_16k.zip"  # query string dropped


# --------------------------------------------------------------------------- CLI
def test_cli_download_list_and_exit_codes(tmp_path, server, sleeps, monkeypatch, capsys):
    base, st = server
    monkeypatch.setitem(CATALOG, "tiny", tiny_source())  # the official URL is unreachable
    root = tmp_path / "data"
    assert main(["data", "download", "tiny", "--root", str(root), "--url", f"{base}/tiny.zip", "-q"]) == 0
    out = capsys.readouterr().out
    assert f"ready: {root / 'tiny'}" in out and "please cite: nobody" in out
    assert st.requests[0][0] == "/tiny.zip" and sleeps == []
    assert (root / "tiny/audio/a.wav").exists()

    monkeypatch.setitem(CATALOG, "tiny", tiny_source(md5="0" * 32))
    assert main(["data", "download", "tiny", "--root", str(tmp_path / "d2"), "--url", f"{base}/tiny.zip"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mgcl data: error:") and "md5" in err[-1] and ".part" in err[-1]
    assert not (tmp_path / "d2/tiny").exists()  # nothing corrupt unpacked
    # the user checked the new upstream archive: an explicit override lets it through
    assert (
        main(
            [
                "data",
                "download",
                "tiny",
                "--root",
                str(tmp_path / "d2"),
                "--url",
                f"{base}/tiny.zip",
                "--checksum",
                f"md5:{MD5}",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["data", "download", "nope", "--root", str(root)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert main(["data", "download", "tiny", "--root", str(root), "--checksum", "md5:xyz"]) == 2
    assert "checksum 'md5:xyz'" in capsys.readouterr().err

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^tiny\s+unknown\s+1\s+all\s+CC0$", out, re.MULTILINE)
    assert re.search(r"^crema_d\s.*manual", out, re.MULTILINE)
    assert main(["data", "list", "esc50"]) == 0
    assert "md5:7771e4b9d86d0945acce719c7a59305a" in capsys.readouterr().out

    assert main(["data", "download", "crema_d", "--root", str(root)]) == 1  # manual step
    out = capsys.readouterr().out
    assert "git lfs" in out and str(root / "CREMA-D") in out


def test_cli_download_by_alias_like_the_loaders(tmp_path, server, sleeps, capsys):
    """`mgcl data download us8k` is `urbansound8k` (one catalog for downloads and loaders)."""
    base, st = server
    wav = FILES["tiny/audio/a.wav"]
    meta = b"slice_file_name,fsID,start,end,salience,fold,classID,class\n1-0-0-0.wav,1,0,1,1,1,0,air_conditioner\n"
    archive = make_tar({"UrbanSound8K/metadata/UrbanSound8K.csv": meta, "UrbanSound8K/audio/fold1/1-0-0-0.wav": wav})
    st.files["/us8k.tar.gz"] = archive
    root = tmp_path / "data"
    assert (
        main(
            [
                "data",
                "download",
                "us8k",
                "--root",
                str(root),
                "--url",
                f"{base}/us8k.tar.gz",
                "--checksum",
                f"md5:{hashlib.md5(archive).hexdigest()}",
                "-q",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"ready: {root / 'UrbanSound8K'}" in out
    assert f"please cite: {CATALOG['urbansound8k'].citation}" in out
    ds = load_dataset("us8k", root)
    assert ds.name == "urbansound8k" and ds.root == (root / "UrbanSound8K").resolve()
    assert ds.citation == CATALOG["urbansound8k"].citation and ds.fold_ids == ("1",)
    assert main(["data", "list", "US8K"]) == 0
    assert "urbansound8k: UrbanSound8K" in capsys.readouterr().out
    assert main(["data", "download", "folders", "--root", str(root)]) == 2
    assert "folders: nothing to download" in capsys.readouterr().err


def test_cli_help_teaches(capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", "download", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("resume", "--keep-archive", "--url", "checksum", "exit status", "examples:"):
        assert word in out
    assert main(["data"]) == 2  # no action: the data help, on stderr
    assert "download" in capsys.readouterr().err


def test_register_on_a_fresh_parser():
    import argparse

    from mgcl.cli.data import register

    parser = argparse.ArgumentParser(prog="mgcl")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", "download", "esc50", "--root", "x", "--keep-archive"])
    assert args.command == "data" and args.name == "esc50" and args.keep_archive and callable(args.func)
