"""Manifests: CSV files with a header and columns ``path,label`` (+ optional ``fold``, ``split``).

Relative paths are resolved against the CSV's folder; absolute paths are kept.
:func:`read_csv_records` is the one CSV reader of the data layer (manifests and the
metadata files of the official dataset layouts).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mgcl.errors import ManifestError

REQUIRED = ("path", "label")


@dataclass(frozen=True)
class Row:
    path: Path
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
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
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
    except csv.Error as exc:
        raise ManifestError(f"{where}: malformed CSV ({exc})") from None
    if not records:
        raise ManifestError(f"{where}: has a header but no rows")
    for line, rec in enumerate(records, start=2):
        empty = [c for c in required if not rec.get(c)]
        if empty:
            raise ManifestError(f"{where}:{line}: empty {', '.join(empty)}")
    return records


def read_manifest(csv_path: str | Path) -> list[Row]:
    """Rows of a manifest; raises ManifestError (one line) on a missing or malformed file."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    rows = []
    for rec in read_csv_records(csv_path, REQUIRED, str(csv_path)):
        p = Path(rec["path"])
        rows.append(
            Row(
                path=p if p.is_absolute() else csv_path.parent / p,
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
