"""Fetch the field's datasets from their official public locations.

Three pieces, usable alone:

- :func:`download` — one URL to one file over HTTP(S) (standard library only): streams to
  ``DEST.part``, resumes an interrupted transfer with ``Range: bytes=N-`` when the server
  answers 206 and restarts cleanly when it answers 200, retries connection errors and 5xx
  with exponential back-off, verifies md5/sha256, and only then renames ``DEST.part`` to
  ``DEST``. A checksum mismatch raises :class:`ChecksumError` and keeps ``DEST.part`` (never
  the final name), so nothing corrupt is ever used.
- :func:`extract` — zip / tar(.gz/.bz2/.xz) into a folder, refusing members with absolute
  paths, ``..`` or links that leave the folder; unpacks into a hidden temporary folder and
  moves the result into place, then writes a marker holding the archive checksum, so an
  interrupted extraction never looks complete and a second call is skipped.
- :func:`fetch_dataset` — the two above for every archive of a dataset of the catalog
  (:mod:`mgcl.data.catalog`: archives, checksums, manual steps), returning the folder
  that the dataset loaders read.

Messages go to the ``log`` callback of each function (default: this module's logger, at
INFO); the only output of its own is the tqdm byte bar on a terminal.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from mgcl.data.catalog import Entry, get_entry
from mgcl.errors import MgclError
from mgcl.util.atomic import atomic_write_bytes
from mgcl.util.hashing import file_hash
from mgcl.util.progress import progress_bar
from mgcl.version import __version__

USER_AGENT = f"mgcl/{__version__} (dataset download; Python-urllib)"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20

# Patched by tests; the back-off between retries sleeps through this.
_sleep = time.sleep

Log = Callable[[str], None]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- errors
class DownloadError(MgclError):
    """A download that could not be completed (HTTP error, too many failed retries, ...)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the recorded checksum; the ``.part`` file is kept."""

    def __init__(self, message: str, path: Path, algo: str, expected: str, actual: str):
        super().__init__(message)
        self.path, self.algo, self.expected, self.actual = Path(path), algo, expected, actual


class UnsafeArchiveError(MgclError):
    """An archive member would be written outside the target folder (absolute path, ``..``, link)."""


class ManualStepRequired(MgclError):
    """The dataset cannot be fetched automatically; ``instructions`` says what to do."""

    def __init__(self, entry: Entry, dataset_dir: Path):
        self.entry = entry
        self.dataset_dir = Path(dataset_dir)
        self.instructions = entry.manual.format(dir=self.dataset_dir, root=self.dataset_dir.parent)
        super().__init__(
            f"{entry.name} needs a manual step and was not found in {self.dataset_dir} "
            f"(see `mgcl data list {entry.name}`)"
        )


# --------------------------------------------------------------------------- catalog
def download_entry(name: str) -> Entry:
    """The catalog entry of dataset ``name`` (case, '-' and '_' ignored; aliases such as
    'us8k' too), checked to have something to download (archives or a manual step)."""
    entry = get_entry(name)
    if not entry.downloadable:
        raise MgclError(f"{entry.name}: nothing to download ({entry.description})")
    return entry


# --------------------------------------------------------------------------- helpers
def part_path(dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def parse_checksum(text: str | None) -> tuple[str, str] | None:
    """'md5:HEX' / 'sha256:HEX' / bare 32 or 64 hex digits -> (algo, hex); None / 'none' -> None."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    algo, sep, value = text.strip().partition(":")
    if not sep:
        algo, value = {32: "md5", 64: "sha256"}.get(len(text.strip()), "?"), text.strip()
    algo, value = algo.lower(), value.lower()
    lengths = {"md5": 32, "sha256": 64}
    if algo not in lengths or not re.fullmatch(rf"[0-9a-f]{{{lengths.get(algo, 0)}}}", value):
        raise MgclError(f"checksum '{text}' is not md5:<32 hex digits>, sha256:<64 hex digits> or none")
    return algo, value


def _human(n: int | None) -> str:
    if n is None:
        return "unknown size"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)  # pragma: no cover


class _ByteBar:
    """A bytes progress bar on a terminal (tqdm), or a callback ``progress(done, total)``."""

    def __init__(self, progress, desc: str):
        self.callback = progress if callable(progress) else None
        self.show = bool(progress) and not callable(progress) and sys.stderr.isatty()
        self.desc = desc
        self.bar = None
        self.done = 0
        self.total: int | None = None

    def start(self, total: int | None, initial: int) -> None:
        self.done, self.total = initial, total
        if self.show:
            if self.bar is None:
                self.bar = tqdm(
                    total=total,
                    initial=initial,
                    desc=self.desc,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=sys.stderr,
                    leave=False,
                )
            else:
                self.bar.reset(total=total)
                self.bar.update(initial)
        if self.callback:
            self.callback(self.done, self.total)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 199, 1000); 'bytes */1000' -> (None, None, 1000)."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None, None
    start, end, total = m.groups()
    return (int(start) if start else None, int(end) if end else None, int(total) if total and total != "*" else None)


def _content_length(headers) -> int | None:
    try:
        return int(headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None


class _Retry(Exception):
    """Internal: a transient failure; ``progressed`` when bytes were written first."""

    def __init__(self, reason: str, progressed: bool = False):
        super().__init__(reason)
        self.reason, self.progressed = reason, progressed


# --------------------------------------------------------------------------- download
def download(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress=True,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 2.0,
    log: Log | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming, retrying and verifying; returns ``dest``.

    The bytes go to ``dest + ".part"``; an existing ``.part`` is resumed with a Range
    request (a server that answers 200 instead of 206 restarts it from zero). Connection
    errors, timeouts, truncated bodies, 408/429/5xx are retried up to ``retries`` times in a
    row (a retry that made progress resets the count), waiting ``backoff * 2**k`` seconds
    (at most 60). With ``md5`` / ``sha256`` the complete file is verified: on a mismatch
    :class:`ChecksumError` is raised and the ``.part`` file is kept (for a re-check or a
    resume); ``dest`` is only ever created, by an atomic rename, from verified bytes.
    ``dest`` already present (and matching the checksum, when one is given) is not fetched
    again. ``progress``: True (a bar when stderr is a terminal), False, or a callable
    ``progress(bytes_done, total_or_None)``.
    """
    dest = Path(dest)
    log = log or logger.info
    checks = [(a, v.lower()) for a, v in (("md5", md5), ("sha256", sha256)) if v]
    if dest.exists():
        if not dest.is_file():
            raise DownloadError(f"{dest}: exists and is not a file")
        _verify(dest, checks, str(dest))
        log(f"{dest.name}: already downloaded" + (" and verified" if checks else ""))
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    _fetch(url, part, progress=progress, timeout=timeout, retries=retries, backoff=backoff, log=log, desc=dest.name)
    _verify(part, checks, url)
    for algo, expected in checks:
        log(f"{dest.name}: {algo} verified ({expected})")
    os.replace(part, dest)
    return dest


def _verify(path: Path, checks: list[tuple[str, str]], source: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` matches every ``(algo, expected hex)``."""
    for algo, expected in checks:
        actual = file_hash(path, algo)
        if actual != expected:
            raise ChecksumError(
                f"{source}: {algo} is {actual}, expected {expected}; kept as {path} and not used "
                f"(delete it to download again)",
                path,
                algo,
                expected,
                actual,
            )


def _fetch(
    url: str, part: Path, *, progress, timeout: float, retries: int, backoff: float, log: Log, desc: str
) -> None:
    """Fill ``part`` with the whole body of ``url`` (resuming what is there)."""
    bar = _ByteBar(progress, desc)
    failures = 0
    use_range = True
    try:
        while True:
            try:
                if _attempt(url, part, bar, timeout, use_range, log):
                    return
                # The server could not resume where we are: start again from zero.
                use_range, reason, progressed = False, "could not resume", False
            except _Retry as exc:
                use_range, reason, progressed = True, exc.reason, exc.progressed
            failures = 1 if progressed else failures + 1
            if failures > retries:
                raise DownloadError(
                    f"{url}: {reason}; gave up after {retries} retries"
                    + (f" (the partial download {part} is kept: run again to resume)" if part.exists() else "")
                )
            if use_range:
                delay = min(backoff * 2 ** (failures - 1), 60.0)
                log(f"{desc}: {reason}; retry {failures}/{retries} in {delay:.0f} s")
                _sleep(delay)
    finally:
        bar.close()


def _attempt(url: str, part: Path, bar: _ByteBar, timeout: float, use_range: bool, log: Log) -> bool:
    """One request. True: ``part`` is complete; False: try again from zero; _Retry: transient."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have and use_range:
        headers["Range"] = f"bytes={have}-"
    elif have:
        part.unlink()
        have = 0
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        try:
            if exc.code == 416 and have:
                _, _, total = _content_range(exc.headers.get("Content-Range"))
                if total == have:
                    log(f"{part.name}: already complete ({_human(total)})")
                    return True
                log(f"{part.name}: the server cannot resume at byte {have}; restarting")
                return False
            if exc.code in RETRY_STATUS:
                raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        raise _Retry(f"cannot connect ({exc.reason})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Retry(f"connection failed ({exc.__class__.__name__}: {exc})") from None

    with resp:
        status = resp.status
        length = _content_length(resp.headers)
        if status == 206 and have:
            start, _, total = _content_range(resp.headers.get("Content-Range"))
            if start != have:
                log(f"{part.name}: the server resumed at byte {start}, not {have}; restarting")
                return False
            if total is None and length is not None:
                total = have + length
            mode = "ab"
            log(f"{part.name}: resuming at {_human(have)} of {_human(total)}")
        elif status in (200, 206):  # 206 without a Range request would be odd; take it whole
            if have:
                log(f"{part.name}: the server does not support resuming; restarting from zero")
            have, total, mode = 0, length, "wb"
        else:
            raise DownloadError(f"{url}: unexpected HTTP status {status}")
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if free < total - have:
                raise DownloadError(
                    f"{part.parent}: {_human(total - have)} still to download but only {_human(free)} free"
                )
        bar.start(total, have)
        got = 0
        # read1: whatever has arrived (up to CHUNK), so a timeout or reset loses no bytes
        # already received; read(CHUNK) would drop a partly filled buffer with the error.
        read = getattr(resp, "read1", resp.read)
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        chunk = read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, IncompleteRead
                        raise _Retry(
                            f"connection lost after {_human(have + got)} ({exc.__class__.__name__})", progressed=got > 0
                        ) from None
                    if not chunk:
                        break
                    fh.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except OSError as exc:  # opening or writing the file (a full disk): not worth retrying
            raise DownloadError(f"{part}: cannot write ({exc.strerror or exc})") from None
    size = part.stat().st_size
    if total is None or size == total:
        return True
    if size < total:
        raise _Retry(f"connection closed after {_human(size)} of {_human(total)}", progressed=got > 0)
    log(f"{part.name}: {_human(size)} received but the server announced {_human(total)}; restarting")
    part.unlink()
    return False


# --------------------------------------------------------------------------- extract


def marker_path(dest: str | os.PathLike, archive_name: str) -> Path:
    """The file that records a completed extraction of ``archive_name`` into ``dest``."""
    return Path(dest) / f".{archive_name}.extracted.json"


def is_extracted(dest: str | os.PathLike, archive_name: str, checksum: str | None = None) -> bool:
    """True when ``archive_name`` was fully extracted into ``dest`` (from an archive with
    ``checksum``, when one is given)."""
    marker = marker_path(dest, archive_name)
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return checksum is None or info.get("checksum") == checksum


def _archive_kind(path: Path) -> str:
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except OSError:
        pass
    raise MgclError(f"{path}: not a zip or tar(.gz/.bz2/.xz) archive")


def _safe_name(archive: Path, name: str) -> str:
    """The member path, normalised; raises UnsafeArchiveError when it would leave the folder."""
    n = name.replace("\\", "/")
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if n.startswith("/") or re.match(r"^[A-Za-z]:", n) or ".." in parts:
        raise UnsafeArchiveError(
            f"{archive.name}: member '{name}' would be written outside the target folder; refusing to extract"
        )
    return "/".join(parts)


def _check_members(archive: Path, kind: str, handle) -> list:
    """All members, each checked; links must stay inside; devices and FIFOs are refused."""
    if kind == "zip":
        members = handle.infolist()
        for info in members:
            _safe_name(archive, info.filename)
        return members
    members = handle.getmembers()
    for m in members:
        name = _safe_name(archive, m.name)
        if m.issym() or m.islnk():
            target = m.linkname.replace("\\", "/")
            base = PurePosixPath(name).parent if m.issym() else PurePosixPath("")
            resolved = os.path.normpath(str(base / target)) if not target.startswith("/") else "/"
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise UnsafeArchiveError(
                    f"{archive.name}: link '{m.name}' -> '{m.linkname}' points outside the target folder; "
                    "refusing to extract"
                )
        elif not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(f"{archive.name}: member '{m.name}' is a device or FIFO; refusing to extract")
    return members


def _merge(src: Path, dest: Path) -> None:
    """Move the entries of ``src`` into ``dest``: whole folders by one rename when new,
    merged when a folder of that name exists (multi-part datasets), files replaced."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dest / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if target.is_dir() and not target.is_symlink():
                _merge(entry, target)
                continue
            if target.exists() or target.is_symlink():
                target.unlink()
            os.rename(entry, target)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)


def extract(
    archive: str | os.PathLike,
    root: str | os.PathLike,
    *,
    checksum: str | None = None,
    progress=True,
    log: Log | None = None,
) -> Path:
    """Unpack a zip / tar(.gz/.bz2/.xz) ``archive`` into the folder ``root``; returns ``root``.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    links leaving the folder, devices and FIFOs raise :class:`UnsafeArchiveError`. The
    archive is unpacked into a hidden temporary folder inside ``root`` and its entries are
    then renamed into place; a marker ``.<archive name>.extracted.json`` holding
    ``checksum`` (default: the archive's sha256) is written last. A second call with the
    same checksum finds the marker and does nothing, so an interrupted extraction is redone
    and a finished one is not.
    """
    archive, dest = Path(archive), Path(root)
    log = log or logger.info
    if not archive.is_file():
        raise MgclError(f"{archive}: archive not found")
    if checksum is None:
        checksum = "sha256:" + file_hash(archive, "sha256")
    if is_extracted(dest, archive.name, checksum):
        log(f"{archive.name}: already extracted in {dest}")
        return dest
    kind = _archive_kind(archive)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob(f".{archive.name}.extracting-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.extracting-", dir=dest))
    try:
        opener = zipfile.ZipFile if kind == "zip" else tarfile.open
        with opener(archive) as handle:
            members = _check_members(archive, kind, handle)
            log(f"{archive.name}: extracting {len(members)} entries into {dest}")
            show = None if progress is True else bool(progress) and not callable(progress)
            with progress_bar(len(members), f"extracting {archive.name}", unit="file", enabled=show) as update:

                def counted():
                    for m in members:
                        yield m
                        update(1)

                # extractall (not member by member): folders get their modes last, so a
                # read-only folder in the archive does not block the files inside it.
                if kind == "tar" and hasattr(tarfile, "data_filter"):
                    handle.extractall(tmp, members=counted(), filter="data")
                else:  # zip; or tar on Python < 3.11.4 (members were checked above)
                    handle.extractall(tmp, members=counted())
        entries = sorted(p.name for p in tmp.iterdir())
        _merge(tmp, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise MgclError(f"{archive}: cannot extract ({exc.__class__.__name__}: {exc})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info = {
        "archive": archive.name,
        "checksum": checksum,
        "entries": entries,
        "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_bytes(marker_path(dest, archive.name), (json.dumps(info, indent=2) + "\n").encode("utf-8"))
    return dest


# --------------------------------------------------------------------------- datasets
def _find_dataset_dir(base: Path, expect: Iterable[str]) -> Path | None:
    """``base`` when every expected path is in it, else the single sub-folder that has them."""
    expect = tuple(expect)

    def complete(d: Path) -> bool:
        return d.is_dir() and all((d / e).exists() for e in expect)

    if complete(base):
        return base
    if expect and base.is_dir():
        hits = [d for d in base.iterdir() if not d.name.startswith(".") and complete(d)]
        if len(hits) == 1:
            return hits[0]
    return None


def dataset_dir(name: str, root: str | os.PathLike) -> Path | None:
    """The folder of dataset ``name`` under ``root`` when it is complete there, else None."""
    entry = download_entry(name)
    return _find_dataset_dir(Path(root) / entry.folder, entry.expect)


def fetch_dataset(
    name: str,
    root: str | os.PathLike,
    progress=True,
    *,
    keep_archive: bool = False,
    url: str | None = None,
    checksum: str | None | bool = True,
    include_optional: bool = False,
    timeout: float = 60.0,
    retries: int = 5,
    log: Log | None = None,
) -> Path:
    """Download, verify and extract dataset ``name`` under ``root``; returns its folder.

    Archives are saved in ``root`` (deleted after extraction unless ``keep_archive``) and
    unpacked as the catalog entry says; parts already extracted (marker present) are skipped, so
    a second call costs nothing and an interrupted one resumes. ``url`` overrides the source:
    for a one-archive dataset the archive's URL, otherwise a base URL ending in '/' to which
    each archive's file name is appended (a mirror). ``checksum``: True (the recorded ones),
    or an override for a one-archive dataset ('md5:HEX', 'sha256:HEX', or None / 'none' to
    skip verification). Datasets that need a manual step raise :class:`ManualStepRequired`
    unless their files are already in place. The returned folder is the dataset root that
    the loaders read (e.g. ``root/ESC-50-master``).
    """
    entry = download_entry(name)
    root = Path(root).expanduser()
    log = log or logger.info
    target = root / entry.folder
    if entry.manual:
        found = _find_dataset_dir(target, entry.expect)
        if found is None:
            raise ManualStepRequired(entry, target)
        log(f"{entry.name}: found in {found}")
        return found
    parts = entry.parts(include_optional)
    override = None
    if checksum is not True:
        if len(parts) != 1:
            raise MgclError(f"a checksum override needs a one-archive dataset; {entry.name} has {len(parts)} archives")
        override = parse_checksum(checksum) if isinstance(checksum, str) else None
    if url is not None and len(parts) > 1 and not url.endswith("/"):
        raise MgclError(
            f"{entry.name} has {len(parts)} archives: give --url as a base URL ending in '/' "
            "(each archive's file name is appended)"
        )
    root.mkdir(parents=True, exist_ok=True)
    for i, arc in enumerate(parts, 1):
        into = root / arc.into if arc.into else root
        algo_value = override if checksum is not True else parse_checksum(arc.checksum)
        recorded = f"{algo_value[0]}:{algo_value[1]}" if algo_value else None
        if is_extracted(into, arc.name, recorded):
            log(f"[{i}/{len(parts)}] {arc.name}: already downloaded and extracted")
            continue
        urls = [url if len(parts) == 1 else url + arc.name] if url is not None else [arc.url, *arc.mirrors]
        dest = root / arc.name
        log(
            f"[{i}/{len(parts)}] {arc.name} ({_human(arc.size) if arc.size else 'size from the server'}"
            f"{', ' + algo_value[0] + ' ' + algo_value[1] if algo_value else ', no recorded checksum'})"
        )
        for k, u in enumerate(urls):
            log(f"downloading {u}")
            try:
                download(
                    u,
                    dest,
                    md5=algo_value[1] if algo_value and algo_value[0] == "md5" else None,
                    sha256=algo_value[1] if algo_value and algo_value[0] == "sha256" else None,
                    progress=progress,
                    timeout=timeout,
                    retries=retries,
                    log=log,
                )
                break
            except ChecksumError:
                raise
            except DownloadError as exc:
                if k + 1 == len(urls):
                    raise
                log(f"{exc}; trying the next mirror")
        if recorded is None:
            recorded = "sha256:" + file_hash(dest, "sha256")
        extract(dest, into, checksum=recorded, progress=progress, log=log)
        if not keep_archive:
            dest.unlink()
    found = _find_dataset_dir(target, entry.expect)
    if found is None:
        missing = [e for e in entry.expect if not (target / e).exists()] or [entry.folder]
        present = sorted(p.name for p in target.iterdir())[:8] if target.is_dir() else []
        raise MgclError(
            f"{entry.name}: extracted under {root}, but '{target / missing[0]}' is missing "
            f"(found in {target}: {', '.join(present) or 'nothing'}); the archive layout may have changed"
        )
    return found
