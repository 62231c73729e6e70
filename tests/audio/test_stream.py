"""Streamed reading (mgcl.audio.stream): a recording named by a URI is read a block at a time
through pyarrow.fs (file:// here, the code path of s3:// and gs://), with the same samples
and the same one-line errors as the local file."""

import numpy as np
import pytest

from mgcl.audio.stream import duration, iter_blocks, peak
from mgcl.errors import AudioError
from tests.conftest import file_uri, tone


@pytest.mark.parametrize("fmt,ext", [("WAV", "wav"), ("FLAC", "flac")])
def test_a_uri_streams_the_local_files_samples(write_wav, fmt, ext):
    x = np.concatenate([tone(440, 3.0, 44100), 0.5 * tone(880, 2.5, 44100)])
    p = write_wav(f"long.{ext}", x, 44100, format=fmt)
    local = list(iter_blocks(p, 16000, block_seconds=1.0))
    remote = list(iter_blocks(file_uri(p), 16000, block_seconds=1.0))
    assert len(remote) == len(local) > 4  # read a block at a time, not at once
    assert all(np.array_equal(a, b) for a, b in zip(local, remote))
    assert duration(file_uri(p)) == duration(p) == pytest.approx(5.5)
    assert peak(file_uri(p), 16000) == peak(p, 16000)


def test_streaming_a_uri_asks_no_file_info_besides_opening_it(write_wav, monkeypatch):
    from mgcl.util import uri as uri_mod

    p = write_wav("a.wav", tone(440, 2.0, 16000), 16000)
    calls = []
    real = uri_mod._info
    monkeypatch.setattr(uri_mod, "_info", lambda u: calls.append(u) or real(u))
    assert duration(file_uri(p)) == pytest.approx(2.0) and sum(len(b) for b in iter_blocks(file_uri(p), 16000)) > 0
    assert calls == []  # the open is the one request; only a failure it cannot name asks again
    with pytest.raises(AudioError, match="file not found"):
        list(iter_blocks(file_uri(p.with_name("nope.wav")), 16000))
    assert calls == []  # named by the open itself
    with pytest.raises(AudioError, match="is a directory"):
        list(iter_blocks(file_uri(p.parent), 16000))
    assert calls == [file_uri(p.parent)]


def test_a_uri_fails_with_the_local_files_reasons(write_wav, tmp_path):
    cases = {
        "missing": tmp_path / "nope.wav",
        "folder": tmp_path,
        "unsupported": tmp_path / "notes.txt",
        "empty": tmp_path / "empty.wav",
        "not audio": tmp_path / "bad.wav",
    }
    cases["unsupported"].write_text("hello")
    cases["empty"].write_bytes(b"")
    cases["not audio"].write_bytes(b"not audio at all")
    for what, p in cases.items():
        with pytest.raises(AudioError) as local:
            list(iter_blocks(p, 16000))
        with pytest.raises(AudioError) as remote:
            list(iter_blocks(file_uri(p), 16000))
        assert remote.value.source == file_uri(p), what
        assert remote.value.reason == local.value.reason, what
    with pytest.raises(AudioError, match="file not found"):
        duration(file_uri(cases["missing"]))
    with pytest.raises(AudioError, match="not audio or undecodable"):
        duration(file_uri(cases["not audio"]))
