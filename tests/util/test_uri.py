"""Files named by URIs (mgcl.util.uri), read through pyarrow.fs: file:// URIs here (pyarrow's
LocalFileSystem, the code path of s3:// and gs://); the content hash of a URI is the local
file hasher's, byte for byte."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from mgcl.audio.decode import file_digest, source_digest
from mgcl.errors import AudioError
from mgcl.util import uri as uri_mod
from mgcl.util.hashing import CHUNK, file_hash, uri_hash
from mgcl.util.uri import INSTALL_HINT, UriError, child, is_uri, list_files, read_bytes, resolve, sibling
from tests.conftest import file_uri

pafs = pytest.importorskip("pyarrow.fs")


@pytest.fixture
def blobs(tmp_path):
    """Files of 0 bytes, a few bytes, exactly one read block and 2.5 blocks, one in a folder
    whose name needs quoting in a URI."""
    rng = np.random.default_rng(0)
    sizes = {"empty.bin": 0, "small.bin": 7, "block.bin": CHUNK, "a b/big #1.bin": 5 * CHUNK // 2}
    out = []
    for name, n in sizes.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.integers(0, 256, n, dtype="uint8").tobytes())
        out.append(p)
    return out


def test_the_hash_through_pyarrow_is_the_local_file_hash(blobs):
    for p in blobs:
        u = file_uri(p)
        for algo, size in (("blake2b", 16), ("sha256", None)):
            assert uri_hash(u, algo, size) == file_hash(p, algo, size)
        assert uri_hash(u, "blake2b", 16) == hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
        assert source_digest(u) == file_digest(p) == source_digest(str(p))  # the store's key
        assert read_bytes(u) == p.read_bytes()


def test_is_uri():
    assert is_uri("s3://bucket/a.wav") and is_uri("file:///tmp/a.wav") and is_uri("gs://b/k")
    assert not is_uri("/tmp/a.wav") and not is_uri("a.wav") and not is_uri("C://x")
    assert not is_uri(Path("s3://bucket/a.wav"))  # a Path has already folded the '//'


def test_paths_of_one_root_are_from_uris_paths(tmp_path, blobs):
    """One filesystem per root is kept; every path is still the one from_uri gives."""
    for p in blobs:
        u = file_uri(p)
        assert resolve(u)[1] == pafs.FileSystem.from_uri(u)[1] == str(p)
    assert resolve("s3://bucket/x%20y/a.wav?region=us-east-1")[1] == "bucket/x y/a.wav"
    assert resolve("s3://bucket/b.wav?region=us-east-1")[1] == "bucket/b.wav"  # from the kept filesystem


def test_child_sibling_and_listing(tmp_path, blobs):
    root = file_uri(tmp_path)
    assert child(root + "/", "a b/x.wav") == file_uri(tmp_path / "a b" / "x.wav")
    assert sibling("s3://bk/m/list.csv?region=x", "../a b.wav") == "s3://bk/a%20b.wav?region=x"
    listing = dict(list_files(root))
    assert sorted(listing) == sorted(p.relative_to(tmp_path).as_posix() for p in blobs)
    assert listing["a b/big #1.bin"] == file_uri(tmp_path / "a b" / "big #1.bin")
    assert read_bytes(listing["a b/big #1.bin"]) == blobs[-1].read_bytes()


def test_failures_are_one_line_naming_the_uri(tmp_path):
    missing = file_uri(tmp_path / "nope.wav")
    cases = {
        missing: ("missing", "file not found"),
        file_uri(tmp_path): ("directory", "is a directory"),
        "foo://bucket/a.wav": ("scheme", "unknown URI scheme 'foo://' (pyarrow.fs reads file://, s3://"),
    }
    for u, (kind, words) in cases.items():
        with pytest.raises(UriError) as err:
            read_bytes(u)
        assert err.value.kind == kind and str(err.value).startswith(f"{u}: {words}") and "\n" not in str(err.value)
    with pytest.raises(UriError, match="folder not found"):
        list_files(file_uri(tmp_path / "nope"))
    with pytest.raises(AudioError, match=r"^foo://bucket/a\.wav: unknown URI scheme 'foo://'"):
        source_digest("foo://bucket/a.wav")


def test_without_pyarrow_a_uri_is_a_one_line_error_naming_the_extra(monkeypatch, blobs):
    monkeypatch.setitem(sys.modules, "pyarrow.fs", None)  # import pyarrow.fs -> ImportError
    monkeypatch.setattr(uri_mod, "_FILESYSTEMS", {})
    u = file_uri(blobs[1])
    with pytest.raises(AudioError) as err:
        source_digest(u)
    assert str(err.value) == f"{u}: {INSTALL_HINT}" and "pip install 'mgcl[ray]'" in str(err.value)
    assert source_digest(str(blobs[1])) == file_digest(blobs[1])  # local files need no pyarrow
