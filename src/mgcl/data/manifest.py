"""Manifests: CSV files with a header and columns ``path,label`` (+ optional ``fold``, ``split``).

Relative paths are resolved against the CSV's folder; absolute paths are kept.
"""

from __future__ import annotations

import csv
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


def read_manifest(csv_path: str | Path) -> list[Row]:
    """Rows of a manifest; raises ManifestError (one line) on a missing or malformed file."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise ManifestError(
                    f"{csv_path}: header must have columns {', '.join(REQUIRED)} "
                    f"(missing {', '.join(missing)}; found {', '.join(header) or 'nothing'})"
                )
            reader.fieldnames = header
            rows = []
            for line, rec in enumerate(reader, start=2):
                path, label = (rec.get("path") or "").strip(), (rec.get("label") or "").strip()
                if not path or not label:
                    raise ManifestError(f"{csv_path}:{line}: empty path or label")
                p = Path(path)
                rows.append(
                    Row(
                        path=p if p.is_absolute() else csv_path.parent / p,
                        label=label,
                        fold=(rec.get("fold") or "").strip() or None,
                        split=(rec.get("split") or "").strip() or None,
                    )
                )
    except UnicodeDecodeError:
        raise ManifestError(f"{csv_path}: not a UTF-8 text CSV file") from None
    except csv.Error as exc:
        raise ManifestError(f"{csv_path}: malformed CSV ({exc})") from None
    if not rows:
        raise ManifestError(f"{csv_path}: manifest has a header but no rows")
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
