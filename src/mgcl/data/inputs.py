"""What a user points a command at, as a list of audio files: files, folders and manifests.

:func:`expand_inputs` turns ``mgcl predict MODEL a.wav clips/ more.csv`` into files: a
folder gives the audio files below it (recursively, natural order of their path inside
the folder: ``clip2`` before ``clip10``), a ``.csv`` the paths of its rows
(:func:`~mgcl.data.manifest.read_manifest`), anything else is taken as a file as given
(a bad one is the decoder's to report, so a batch can list it and go on). A URI
(``s3://bucket/clips/``, ``file:///data/a.wav``: whatever pyarrow.fs opens) is a file, a
folder or a manifest the same way and stays a string; the files of a URI folder are URIs.
:func:`class_folders` reads a folder-per-class support set (``mgcl fit --folders``).

Pure: nothing is decoded. The audio suffixes are the caller's (``mgcl.audio.decode
.SUPPORTED_EXTENSIONS``): this layer does not import the audio one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from mgcl.data.manifest import read_manifest
from mgcl.errors import MgclError
from mgcl.util.text import natural_key
from mgcl.util.uri import UriError, file_type, is_uri, list_files

log = logging.getLogger(__name__)

#: Folders never walked into (besides hidden ones): macOS archive debris.
SKIPPED_FOLDERS = frozenset({"__MACOSX"})


def _suffixes(extensions: Iterable[str]) -> frozenset[str]:
    return frozenset(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def _listing(extensions: Iterable[str]) -> str:
    return ", ".join(sorted(_suffixes(extensions)))


def is_audio_name(path: str | os.PathLike, extensions: Iterable[str]) -> bool:
    """True for a visible file name whose suffix (any case) is one of ``extensions``."""
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in _suffixes(extensions)


def audio_files(folder: str | os.PathLike, extensions: Iterable[str]) -> list[Path]:
    """The audio files below ``folder`` (recursively; hidden files and folders and
    ``__MACOSX`` skipped), as ``folder / relative path``, in natural order of the relative
    path. Empty when there are none; a one-line MgclError when ``folder`` is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MgclError(f"{folder}: folder not found")
    suffixes = _suffixes(extensions)
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_FOLDERS]
        out.extend(Path(dirpath) / f for f in filenames if is_audio_name(f, suffixes))
    return sorted(out, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def uri_audio_files(folder: str, extensions: Iterable[str]) -> list[str]:
    """:func:`audio_files` of a folder named by a URI (listed through pyarrow.fs): the URIs
    of its audio files, the same ones in the same order. One-line MgclError when it cannot
    be listed (no such folder, unknown scheme, no pyarrow)."""
    suffixes = _suffixes(extensions)
    try:
        listing = list_files(folder)
    except UriError as exc:
        raise MgclError(str(exc)) from None
    found = []
    for rel, uri in listing:
        parts = rel.split("/")
        if any(d.startswith(".") or d in SKIPPED_FOLDERS for d in parts[:-1]) or not is_audio_name(parts[-1], suffixes):
            continue
        found.append((rel, uri))
    return [uri for _, uri in sorted(found, key=lambda pair: natural_key(pair[0]))]


def _uri_inputs(uri: str, suffixes: frozenset[str]) -> list[Path | str]:
    """A URI given as an input: a manifest (``.csv``), an audio file (as given: the decoder
    reports it when it cannot be read), another file, or a folder (its audio files)."""
    path = urlsplit(uri).path
    if is_manifest(path):
        return [r.path for r in read_manifest(uri)]
    if is_audio_name(path, suffixes):
        return [uri]
    try:
        kind, _ = file_type(uri)
    except UriError as exc:
        raise MgclError(str(exc)) from None
    if kind == "file":
        return [uri]
    if kind == "missing":
        raise MgclError(f"{uri}: no such file or folder")
    found = uri_audio_files(uri, suffixes)
    if not found:
        raise MgclError(f"{uri}: no audio files ({_listing(suffixes)}) in this folder or below")
    return found


def is_manifest(path: str | os.PathLike) -> bool:
    """A ``.csv`` path (any case) names a manifest."""
    return Path(path).suffix.lower() == ".csv"


def expand_inputs(paths: Sequence[str | os.PathLike], extensions: Iterable[str]) -> list[Path | str]:
    """Files, folders and manifests (mixed, in the order given) -> the audio files they name.

    - a folder: its audio files (:func:`audio_files`); a folder with none is an error;
    - a ``.csv``: the paths of its rows, resolved against its folder (a missing or malformed
      manifest is a :class:`~mgcl.errors.ManifestError`);
    - an existing file, or a missing path with an audio suffix: itself, as given (the
      decoder reports it when it cannot be read, and a batch goes on without it);
    - a missing path without an audio suffix (a mistyped folder): an error;
    - a URI (``scheme://...``): the same, read through pyarrow.fs; it and its files stay strings.

    Every error is one line naming the path. Nothing is deduplicated.
    """
    suffixes = _suffixes(extensions)
    out: list[Path | str] = []
    for given in paths:
        if is_uri(given):
            out.extend(_uri_inputs(given, suffixes))
            continue
        p = Path(given)
        if p.is_dir():
            found = audio_files(p, suffixes)
            if not found:
                raise MgclError(f"{p}: no audio files ({_listing(suffixes)}) in this folder or below")
            out.extend(found)
        elif is_manifest(p):
            out.extend(r.path for r in read_manifest(p))
        elif p.exists() or is_audio_name(p, suffixes):
            out.append(p)
        else:
            raise MgclError(f"{p}: no such file or folder (resolved to {os.path.abspath(p)})")
    return out


def class_folders(root: str | os.PathLike, extensions: Iterable[str]) -> list[tuple[str, list[Path]]]:
    """A folder-per-class support set: ``[(class name, its audio files), ...]`` for every
    visible sub-folder of ``root`` (its name is the class, the audio files below it the
    clips), in natural order of the names.

    One-line MgclError when ``root`` is not a folder, has no sub-folder, or a class folder
    holds no audio. Audio files directly in ``root`` belong to no class: they are left out
    with a warning.
    """
    root = Path(root)
    if not root.is_dir():
        raise MgclError(f"{root}: folder not found (expected one sub-folder per class)")
    suffixes = _suffixes(extensions)
    subs = sorted(
        (d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in SKIPPED_FOLDERS),
        key=lambda d: natural_key(d.name),
    )
    if not subs:
        raise MgclError(f"{root}: no sub-folders (expected one sub-folder per class, its audio files inside)")
    loose = [f for f in root.iterdir() if f.is_file() and is_audio_name(f, suffixes)]
    if loose:
        log.warning(
            "%s: %d audio file(s) directly in the folder belong to no class and are left out (e.g. %s)",
            root,
            len(loose),
            sorted(loose, key=lambda p: natural_key(p.name))[0].name,
        )
    classes = []
    for d in subs:
        files = audio_files(d, suffixes)
        if not files:
            raise MgclError(f"{d}: class folder '{d.name}' has no audio files ({_listing(suffixes)})")
        classes.append((d.name, files))
    return classes
