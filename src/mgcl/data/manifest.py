"""Manifests: CSV files with a header and columns ``path,label`` (+ optional ``fold``, ``split``).

Relative paths are resolved against the CSV's folder; absolute paths and URIs
(``s3://bucket/a.wav``: kept as strings) are kept. The CSV itself may be a URI
(read through pyarrow.fs, :mod:`mgcl.util.uri`); its relative rows are then URIs next to it.
:func:`read_csv_records` is the one CSV reader of the data layer (manifests and the
metadata files of the official dataset layouts).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mgcl.errors import ManifestError
from mgcl.util.uri import UriError, file_type, is_uri, read_bytes, sibling

REQUIRED = ("path", "label")


@dataclass(frozen=True)
class Row:
    path: Path | str  # a URI (``s3://...``) stays a string
    label: str
    fold: str | None = None
    split: str | None = None


def read_csv_records(
    path: str | Path, required: Sequence[str], where: str, delimiter: str = ","
) -> list[dict[str, str]]:
    """The records of a CSV file with a header, keys and values stripped.

    Raises :class:`ManifestError` with one line starting ``where`` when the file is not
    UTF-8 text, is malformed, lacks a ``required`` column, leaves a required value empty
    or has no rows. The caller checks that the file exists (its message says what it is).
    ``path`` may be a URI (read through pyarrow.fs).
    """
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise ManifestError(
                    f"{where}: header must have columns {', '.join(required)} "
                    f"(lacks column(s) {', '.join(missing)}; found {', '.join(header) or 'nothing'})"
                )
            reader.fieldnames = header
            records = [{k: (v or "").strip() for k, v in rec.items() if k is not None} for rec in reader]
    except UnicodeDecodeError:
        raise ManifestError(f"{where}: not a UTF-8 text file") from None
    except UriError as exc:
        raise ManifestError(str(exc)) from None
    except csv.Error as exc:
        raise ManifestError(f"{where}: malformed CSV ({exc})") from None
    if not records:
        raise ManifestError(f"{where}: has a header but no rows")
    for line, rec in enumerate(records, start=2):
        empty = [c for c in required if not rec.get(c)]
        if empty:
            raise ManifestError(f"{where}:{line}: empty {', '.join(empty)}")
    return records


def _open_text(path: str | Path):
    """A local file or a URI, open as UTF-8 text (a BOM dropped) for the csv module."""
    if is_uri(path):
        return io.StringIO(read_bytes(path).decode("utf-8-sig"), newline="")
    return open(path, newline="", encoding="utf-8-sig")


def _manifest_place(csv_path: str | Path) -> tuple[str | Path, Callable[[str], Path | str]]:
    """The manifest (a Path, or a URI string) and how its relative rows are resolved; a
    one-line ManifestError when it is not a file."""
    if is_uri(csv_path):
        try:
            kind, _ = file_type(csv_path)
        except UriError as exc:
            raise ManifestError(str(exc)) from None
        if kind != "file":
            raise ManifestError(f"{csv_path}: manifest not found")
        return csv_path, lambda rel: sibling(csv_path, rel)
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    return csv_path, lambda rel: csv_path.parent / rel


def read_manifest(csv_path: str | Path) -> list[Row]:
    """Rows of a manifest (a local file or a URI); raises ManifestError (one line) on a
    missing or malformed file."""
    csv_path, place = _manifest_place(csv_path)
    rows = []
    for rec in read_csv_records(csv_path, REQUIRED, str(csv_path)):
        given = rec["path"]
        if is_uri(given):
            path = given
        elif Path(given).is_absolute():
            path = Path(given)
        else:
            path = place(given)
        rows.append(
            Row(
                path=path,
                label=rec["label"],
                fold=rec.get("fold") or None,
                split=rec.get("split") or None,
            )
        )
    return rows


def write_manifest(csv_path: str | Path, rows: list[Row]) -> Path:
    """Write rows (paths made relative to the CSV's folder when possible)."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    has_fold = any(r.fold is not None for r in rows)
    has_split = any(r.split is not None for r in rows)
    cols = ["path", "label"] + (["fold"] if has_fold else []) + (["split"] if has_split else [])
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            try:
                rel = Path(r.path).resolve().relative_to(csv_path.parent.resolve())
            except ValueError:
                rel = Path(r.path)
            rec = [rel.as_posix(), r.label]
            rec += [r.fold or ""] if has_fold else []
            rec += [r.split or ""] if has_split else []
            w.writerow(rec)
    return csv_path
