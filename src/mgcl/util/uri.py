"""Files named by URIs (``s3://bucket/clips/a.wav``, ``gs://``, ``hdfs://``, ``file:///abs/a.wav``),
read through :mod:`pyarrow.fs`: whatever ``pyarrow.fs.FileSystem.from_uri`` opens.

The scheme picks the filesystem, the query its options (``s3://bucket/key?region=eu-west-1``)
and the filesystem finds its credentials where it always does (S3: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE``, ``~/.aws``, an instance role). One filesystem
is made per scheme, host and query and kept for the process (S3 looks a bucket's region up
when it is made, a request per file otherwise).

pyarrow is optional (it comes with ``mgcl[ray]``) and imported on first use. Every failure
is a :class:`UriError` naming the URI with a one-line ``reason`` and a ``kind`` (``missing``,
``directory``, ``pyarrow``, ``scheme``, ``unreadable``); the layers above turn it into their
own errors (this package imports nothing of mgcl).
"""

from __future__ import annotations

import posixpath
import re
import threading
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit

#: ``scheme://...`` (a scheme of two characters or more: ``C://`` stays a Windows path).
URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")

#: What to do without pyarrow.
INSTALL_HINT = "reading URIs needs pyarrow: pip install 'mgcl[ray]'"

#: The schemes named in messages (pyarrow.fs reads these; its build decides which work).
KNOWN_SCHEMES = "file://, s3://, gs://, hdfs://"

#: Bytes per read when a file is streamed.
BLOCK = 1 << 20

_FILESYSTEMS: dict[str, tuple[object, str]] = {}  # root -> (filesystem, path prefix)
_LOCK = threading.Lock()


class UriError(Exception):
    """A URI that cannot be opened, listed or read: ``str()`` is ``"<uri>: <reason>"``."""

    def __init__(self, uri: str, reason: str, kind: str = "unreadable"):
        self.uri, self.reason, self.kind = str(uri), reason, kind
        super().__init__(f"{self.uri}: {reason}")


def is_uri(x) -> bool:
    """True for a string ``scheme://...`` (a path object never is one)."""
    return isinstance(x, str) and URI_PATTERN.match(x) is not None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def _pyarrow_fs(uri: str):
    try:
        import pyarrow.fs as pafs  # noqa: PLC0415  (optional dependency)
    except ImportError:
        raise UriError(uri, INSTALL_HINT, "pyarrow") from None
    return pafs


def _root(uri: str) -> tuple[str, str]:
    """``(scheme://host?query, unquoted path)`` of a URI: files under one root share a filesystem."""
    parts = urlsplit(uri)
    return f"{parts.scheme.lower()}://{parts.netloc}?{parts.query}", unquote(parts.path)


def resolve(uri: str) -> tuple[object, str]:
    """``(filesystem, path in it)`` of a URI, as ``FileSystem.from_uri`` gives them; the
    filesystem of the URI's root is made once (see the module docstring)."""
    pafs = _pyarrow_fs(uri)
    root, upath = _root(uri)
    cached = _FILESYSTEMS.get(root)
    if cached is not None and upath:
        fs, prefix = cached
        return fs, prefix + upath
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except ValueError as exc:  # pyarrow.ArrowInvalid
        scheme = uri.split("://", 1)[0]
        if "Unrecognized filesystem type" in str(exc):
            reason = f"unknown URI scheme '{scheme}://' (pyarrow.fs reads {KNOWN_SCHEMES})"
            raise UriError(uri, reason, "scheme") from None
        raise UriError(uri, f"not a URI pyarrow.fs can open ({_first_line(exc)})", "scheme") from None
    except OSError as exc:  # e.g. hdfs:// without a JVM, s3:// whose region lookup fails
        raise UriError(uri, f"cannot open its filesystem ({_first_line(exc)})") from None
    if upath and path.endswith(upath):  # the path is a prefix (S3: the bucket) + the URI's path
        with _LOCK:
            _FILESYSTEMS.setdefault(root, (fs, path[: len(path) - len(upath)]))
    return fs, path


def _info(uri: str) -> tuple[object, str, str, int | None]:
    fs, path = resolve(uri)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:
        raise UriError(uri, f"cannot read ({_first_line(exc)})") from None
    kind = {"File": "file", "Directory": "directory"}.get(info.type.name, "missing")
    return fs, path, kind, (info.size if kind == "file" else None)


def file_type(uri: str) -> tuple[str, int | None]:
    """``("file", size in bytes)``, ``("directory", None)`` or ``("missing", None)``."""
    return _info(uri)[2:]


def _open_file(uri: str, seekable: bool = False):
    """An input stream of the file at ``uri`` (``seekable``: a random-access file): one
    request; a failure is classified (missing, directory, unreadable) by a second one, on the
    error path only."""
    fs, path = resolve(uri)
    try:
        return fs.open_input_file(path) if seekable else fs.open_input_stream(path, compression=None)
    except FileNotFoundError:
        raise UriError(uri, "file not found", "missing") from None
    except OSError as exc:
        reason = f"cannot read ({_first_line(exc)})"
    kind = _info(uri)[2]
    if kind == "missing":
        raise UriError(uri, "file not found", "missing")
    if kind == "directory":
        raise UriError(uri, "is a directory, not a file", "directory")
    raise UriError(uri, reason)


def blocks(uri: str, size: int = BLOCK) -> Iterator[bytes]:
    """The bytes of the file at ``uri``, streamed in blocks of ``size``."""
    stream = _open_file(uri)
    with stream:
        while True:
            try:
                block = stream.read(size)
            except OSError as exc:
                raise UriError(uri, f"cannot read ({_first_line(exc)})") from None
            if not block:
                return
            yield block


def open_seekable(uri: str):
    """The file at ``uri`` as a seekable binary file (pyarrow's random-access file: ``read``,
    ``seek``, ``tell``), for a decoder that reads a long file a block at a time; UriError
    (missing, directory, unreadable) as :func:`blocks`."""
    return _open_file(uri, seekable=True)


def read_bytes(uri: str) -> bytes:
    """All the bytes of the file at ``uri``."""
    return b"".join(blocks(uri))


def _rebuild(uri: str, path: str) -> str:
    """``uri`` with its path replaced by ``path`` (unquoted; quoted here), its query kept."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{quote(path)}" + (f"?{parts.query}" if parts.query else "")


def child(uri: str, relative: str) -> str:
    """The URI of ``relative`` (a POSIX path, not quoted) below the folder ``uri``."""
    folder = unquote(urlsplit(uri).path).rstrip("/") or "/"
    return _rebuild(uri, posixpath.normpath(posixpath.join(folder, relative)))


def sibling(uri: str, relative: str) -> str:
    """The URI of ``relative`` (a POSIX path, not quoted) next to the file ``uri``: a
    manifest's row."""
    folder = posixpath.dirname(unquote(urlsplit(uri).path)) or "/"
    return _rebuild(uri, posixpath.normpath(posixpath.join(folder, relative)))


def list_files(uri: str) -> list[tuple[str, str]]:
    """The files below the folder ``uri``, recursively: ``(relative POSIX path, URI)`` pairs,
    unordered. UriError (kind ``missing``) when there is no such folder."""
    pafs = _pyarrow_fs(uri)
    fs, base = resolve(uri)
    base = base.rstrip("/")
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    except FileNotFoundError:
        raise UriError(uri, "folder not found", "missing") from None
    except OSError as exc:
        raise UriError(uri, f"cannot list ({_first_line(exc)})") from None
    out = []
    for info in infos:
        if info.type.name == "File" and info.path.startswith(base + "/"):
            rel = info.path[len(base) + 1 :]
            out.append((rel, child(uri, rel)))
    return out
