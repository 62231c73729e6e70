"""Labelled audio data ready for a protocol: :class:`Dataset`, the one dataset type of mgcl.

A dataset comes from a manifest CSV (:func:`from_manifest`) or from a dataset's official
layout (:func:`from_layout`, which reads it with the loader of its
:mod:`mgcl.data.catalog` entry). Either way it is a :class:`Dataset`: rows
``Row(path, label, fold, split)``, a readable name per class for text prompts and plots,
and the protocol that keeps support and query apart, chosen by :func:`protocol_of`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mgcl.data.manifest import Row, read_manifest, write_manifest
from mgcl.errors import ManifestError
from mgcl.util.text import natural_key

#: What :func:`protocol_of` answers.
PROTOCOLS = ("folds", "split", "random")
#: The usual split names, in the order :attr:`Dataset.split_ids` lists them.
SPLITS = ("train", "valid", "test")

Names = Mapping[str, str] | str | os.PathLike


def _filled(value) -> bool:
    return value is not None and str(value).strip() != ""


def protocol_of(
    folds: Sequence | None, splits: Sequence | None = None, paths: Sequence | None = None, source: str = ""
) -> str:
    """How support and query are kept apart, from the per-row fold and split columns.

    ``"folds"`` when every row has a non-empty fold, else ``"split"`` when every row has a
    non-empty split, else ``"random"``. A column that is None or empty in every row is
    absent; one filled for some rows but empty for others raises :class:`ManifestError`
    (one line, starting ``source``: how many rows lack a value and one example, the row's
    path when ``paths`` is given, else its 1-based number).
    """
    present = {}
    for column, values in (("fold", folds), ("split", splits)):
        values = list(values) if values is not None else []
        lacking = [i for i, v in enumerate(values) if not _filled(v)]
        if lacking and len(lacking) < len(values):
            example = paths[lacking[0]] if paths is not None else f"row {lacking[0] + 1}"
            raise ManifestError(
                f"{source + ': ' if source else ''}{len(lacking)} of {len(values)} rows "
                f"have no {column} (e.g. {example}); give every row a {column} or none"
            )
        present[column] = bool(values) and not lacking
    return "folds" if present["fold"] else "split" if present["split"] else "random"


def load_names(source: Names) -> dict[str, str]:
    """Class-name overrides from a mapping or a JSON file ``{"label": "readable name"}``."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source).expanduser()
    if not path.is_file():
        raise ManifestError(f"{path}: class-name file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not a JSON file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ManifestError(f'{path}: must hold a JSON object {{"label": "name", ...}}')
    return data


@dataclass(frozen=True)
class Dataset:
    """A labelled audio dataset and the protocol it is evaluated with.

    ``rows``: ``Row(path, label, fold, split)``; ``display_names``: label -> the readable
    class name for text prompts and plots (a label without one is its own name);
    ``groups[i]`` (source recording, speaker, actor... or None) belongs to ``rows[i]``;
    ``root``: the folder the files were found in; ``manifest``: the file caption keys are
    relative to (the CSV, or ``root/manifest.csv`` for a dataset layout); ``origin``: where
    the rows came from. ``protocol`` is not given but read from the rows
    (:func:`protocol_of`): ``"folds"`` (cross-validation: train on every fold but one, test
    on that one), ``"split"`` (train on ``split == "train"``, test on ``split == "test"``)
    or ``"random"`` (support and query drawn at random).
    """

    name: str
    rows: list[Row]
    display_names: dict[str, str] = field(default_factory=dict)
    title: str = ""
    protocol_note: str = ""
    citation: str = ""
    url: str = ""
    groups: list[str | None] = field(default_factory=list)
    root: Path | None = None
    manifest: Path | None = None
    origin: str = ""
    protocol: str = field(init=False)

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: fill in the derived fields once
        set_(self, "rows", list(self.rows))
        if not self.groups:
            set_(self, "groups", [None] * len(self.rows))
        if len(self.groups) != len(self.rows):
            raise ValueError(f"{len(self.groups)} groups for {len(self.rows)} rows")
        set_(self, "display_names", {c: self.display_names.get(c, c) for c in self.classes})
        if self.manifest is None and self.root is not None:
            set_(self, "manifest", Path(self.root) / "manifest.csv")
        if not self.origin:
            set_(self, "origin", str(self.manifest or self.root or ""))
        where = (self.title or self.name) + (f" ({self.origin})" if self.origin else "")
        set_(
            self,
            "protocol",
            protocol_of([r.fold for r in self.rows], [r.split for r in self.rows], [r.path for r in self.rows], where),
        )

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def classes(self) -> list[str]:
        """The labels, sorted."""
        return sorted({r.label for r in self.rows})

    @property
    def labels(self) -> list[str]:
        """The label of each row."""
        return [r.label for r in self.rows]

    @property
    def folds(self) -> list[str] | None:
        """The fold of each row when the protocol is ``"folds"``, else None."""
        return [r.fold for r in self.rows] if self.protocol == "folds" else None

    @property
    def splits(self) -> list[str] | None:
        """The split of each row when the protocol is ``"split"``, else None."""
        return [r.split for r in self.rows] if self.protocol == "split" else None

    @property
    def fold_ids(self) -> tuple[str, ...]:
        """The distinct folds in natural order ('2' before '10'); () unless protocol 'folds'."""
        return tuple(sorted(set(self.folds or ()), key=natural_key))

    @property
    def split_ids(self) -> tuple[str, ...]:
        """The distinct splits, train / valid / test first; () unless protocol 'split'."""
        present = set(self.splits or ())
        return tuple(s for s in SPLITS if s in present) + tuple(sorted(present - set(SPLITS), key=natural_key))

    def names(self, classes: Sequence[str]) -> list[str]:
        """The readable names of ``classes`` (a label without one is its own name)."""
        return [self.display_names.get(c, c) for c in classes]

    def with_names(self, overrides: Names | None) -> Dataset:
        """A copy whose readable names are overridden by ``overrides`` (a mapping label ->
        name, or the path of a JSON file holding one); labels not in it keep theirs."""
        if overrides is None:
            return self
        override = load_names(overrides)
        where = (self.title or self.name) if isinstance(overrides, Mapping) else str(Path(overrides).expanduser())
        unknown = sorted(set(override) - set(self.classes))
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise ManifestError(
                f"{where}: labels not in the data: {shown} (labels are e.g. {', '.join(self.classes[:5])})"
            )
        for label, value in override.items():
            if not isinstance(value, str) or not value.strip():
                raise ManifestError(f"{where}: the name of '{label}' must be a non-empty string")
        return dataclasses.replace(
            self, display_names={**self.display_names, **{k: v.strip() for k, v in override.items()}}
        )

    def to_rows(self) -> list[Row]:
        """A copy of the rows."""
        return list(self.rows)

    def write_manifest(self, csv_path: str | os.PathLike) -> Path:
        """Write the rows as a manifest CSV (``path,label[,fold][,split]``; paths relative
        to the CSV's folder when possible). Groups and readable names are not part of the
        manifest format."""
        return write_manifest(csv_path, self.rows)

    def select(self, fold: str | None = None, split: str | None = None) -> list[int]:
        """Indices of the rows in ``fold`` and/or ``split``."""
        return [
            i
            for i, r in enumerate(self.rows)
            if (fold is None or r.fold == str(fold)) and (split is None or r.split == split)
        ]

    def partitions(self) -> list[tuple[str, list[int], list[int]]]:
        """``(name, train indices, test indices)`` for each evaluation round of the protocol.

        Folds: one round per fold (test = that fold, train = every other fold). Split: one
        round ``"test"`` (train = split ``train``, test = split ``test``; ``valid`` rows are
        in neither). Random: no rounds.
        """
        if self.protocol == "folds":
            return [
                (f, [i for i, r in enumerate(self.rows) if r.fold != f], self.select(fold=f)) for f in self.fold_ids
            ]
        if self.protocol == "split":
            return [("test", self.select(split="train"), self.select(split="test"))]
        return []

    def summary(self) -> str:
        """One line: name, size, classes, protocol."""
        if self.protocol == "folds":
            proto = f"{len(self.fold_ids)} folds"
        elif self.protocol == "split":
            proto = "split " + " / ".join(f"{s} {len(self.select(split=s))}" for s in self.split_ids)
        else:
            proto = "random support and query"
        note = f" ({self.protocol_note})" if self.protocol_note else ""
        return f"{self.title or self.name}: {len(self.rows)} clips, {len(self.classes)} classes, {proto}{note}"


def from_manifest(name: str, csv_path: str | Path, names: Names | None = None) -> Dataset:
    """A manifest CSV; its labels are their own readable names unless ``names`` (a JSON file
    ``{label: readable name}`` or a mapping) overrides them."""
    csv_path = Path(csv_path)
    rows = read_manifest(csv_path)
    return Dataset(name, rows, root=csv_path.parent, manifest=csv_path, origin=str(csv_path)).with_names(names)
