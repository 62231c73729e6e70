"""Loaders for the few-shot audio benchmarks, reading each dataset's layout as distributed.

``load_dataset(name, root)`` returns a :class:`Dataset`: rows ``(path, label, fold, split)``
with absolute paths, the sorted class identifiers, a readable name per class for text
prompts (``air_conditioner`` -> ``air conditioner``; replaceable with ``names=``), the
evaluation protocol the field uses for it (cross-validation ``folds`` or a fixed ``split``),
an optional group per row (source recording, speaker, actor...) for group-aware splits,
and a citation.

``root`` is the dataset's own folder (the one holding its metadata); a folder that holds
the dataset's usual top folder (``ESC-50-master/``, ``UrbanSound8K/``, ...) or exactly one
sub-folder with the expected files is accepted too. A root without the expected files
raises :class:`~mgcl.errors.ManifestError` with one line naming what is missing, and so
does metadata that names audio files absent from disk.

Layouts (paths relative to the root):

=================  ===========================================================================
``esc50``          ``audio/*.wav``, ``meta/esc50.csv`` (filename, fold, target, category, esc10,
                   src_file, take); 5 official folds; group = ``src_file``. ``esc10``: the
                   same files restricted to ``esc10 == True`` (10 classes, same folds).
``urbansound8k``   ``audio/fold<N>/*.wav``, ``metadata/UrbanSound8K.csv`` (slice_file_name,
                   fsID, start, end, salience, fold, classID, class); 10 official folds;
                   group = ``fsID``.
``fsdkaggle2018``  ``FSDKaggle2018.audio_train/``, ``FSDKaggle2018.audio_test/``,
                   ``FSDKaggle2018.meta/train_post_competition.csv`` (fname, label,
                   manually_verified, ...) and ``test_post_competition_scoring_clips.csv``
                   (fname, label, usage, ...); fixed split train / test (the test split is
                   the 1,600 scored clips; the padding clips of the test folder are not rows).
``gtzan``          ``genres_original/<genre>/<genre>.000NN.wav`` (Kaggle) or
                   ``genres/<genre>/<genre>.000NN.au`` (original); the root may also be that
                   ``genres*`` folder itself. No official split: 10 folds
                   of contiguous file indices, fold = ``NN // 10 + 1`` (00000-00009 -> 1, ...,
                   00090-00099 -> 10), so every fold holds 10 clips of every genre. Contiguous
                   blocks keep neighbouring files (often the same artist or album, Sturm 2013)
                   in one fold, which a round-robin assignment would spread over all folds.
``vocalsound``     ``audio_16k/<speaker>_<index>_<label>.wav`` (or ``audio_44k/``) and the
                   official speaker split ``meta/{tr,val,te}_meta.csv`` (no header, first
                   column the speaker id); else ``datafiles/{tr,val,te}.json``; fixed split
                   train / valid / test; group = speaker.
``nsynth``         ``nsynth-{train,valid,test}/examples.json`` + ``audio/<note_str>.wav``;
                   label = ``instrument_family_str``; fixed split; group = ``instrument_str``.
                   Any subset of the three split folders may be present.
``tut2017``        ``TUT-acoustic-scenes-2017-development/meta.txt`` (tab-separated
                   ``audio/<file>.wav``, scene label, location identifier) and
                   ``evaluation_setup/fold{1..4}_evaluate.txt``; 4 official folds (a row's
                   fold is the fold whose evaluate list holds it); group = identifier.
``beijing_opera``  one folder per class (``bangu``, ``daluo``, ``naobo``, ``xiaoluo``) of
                   audio files. No official split: 5 folds, per class the files in natural
                   name order are cut into 5 contiguous, near-equal blocks.
``crema_d``        ``AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav``, emotion codes ANG,
                   DIS, FEA, HAP, NEU, SAD. No official split: 5 speaker-independent folds,
                   the sorted actor ids cut into 5 contiguous blocks; group = actor.
``ravdess``        ``Actor_NN/03-01-EE-II-SS-RR-AA.wav``; only audio-only speech (modality
                   03, vocal channel 01); emotion 01..08 = neutral, calm, happy, sad, angry,
                   fearful, disgust, surprised. No official split: 4 speaker-independent
                   folds of 6 consecutive actors (actors 1-6, 7-12, 13-18, 19-24: 3 male and
                   3 female each); group = actor.
``sesa``           ``train/`` and ``test/`` with ``<class>_<n>.wav`` (classes casual,
                   gunshot, explosion, alarm); fixed split train / test.
``manifest``       a manifest CSV (``path,label[,fold][,split]``, see
                   :mod:`mgcl.data.manifest`); root = the CSV or a folder holding
                   ``manifest.csv``.
``folders``        every sub-folder of the root is a class, the audio files below it its
                   clips; no protocol, or ``n_folds=`` contiguous folds as for Beijing Opera.
=================  ===========================================================================
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mgcl.data.manifest import Row, read_manifest
from mgcl.data.manifest import write_manifest as _write_manifest
from mgcl.errors import ManifestError

__all__ = [
    "AUDIO_EXTENSIONS",
    "Dataset",
    "available_datasets",
    "load_beijing_opera",
    "load_crema_d",
    "load_dataset",
    "load_esc10",
    "load_esc50",
    "load_folders",
    "load_fsdkaggle2018",
    "load_gtzan",
    "load_manifest",
    "load_names",
    "load_nsynth",
    "load_ravdess",
    "load_sesa",
    "load_tut2017",
    "load_urbansound8k",
    "load_vocalsound",
]

#: File suffixes (lower case) that the folder layouts treat as audio.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".au", ".aif", ".aiff", ".opus", ".m4a"})

PROTOCOLS = ("folds", "split", "none")
SPLITS = ("train", "valid", "test")


# ----------------------------------------------------------------------------- Dataset


@dataclass(frozen=True)
class Dataset:
    """A labelled audio dataset and the protocol it is evaluated with.

    ``rows`` hold absolute paths; ``groups[i]`` (source recording, speaker, actor... or
    None) belongs to ``rows[i]``. ``protocol`` is ``"folds"`` (cross-validation over
    ``folds``: train on all folds but one, test on that one), ``"split"`` (train on
    ``split == "train"``, test on ``split == "test"``; ``splits`` lists those present) or
    ``"none"``.
    """

    name: str
    rows: list[Row]
    classes: list[str]
    display_names: dict[str, str]
    protocol: str = "none"
    folds: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    groups: list[str | None] = field(default_factory=list)
    title: str = ""
    protocol_note: str = ""
    citation: str = ""
    url: str = ""
    root: Path | None = None

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if not self.groups:
            object.__setattr__(self, "groups", [None] * len(self.rows))
        if len(self.groups) != len(self.rows):
            raise ValueError(f"{len(self.groups)} groups for {len(self.rows)} rows")
        missing = sorted(set(self.classes) - set(self.display_names))
        if missing:
            raise ValueError(f"no display name for classes {missing}")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.rows]

    def display_name(self, label: str) -> str:
        """The readable name of a class (for text prompts)."""
        return self.display_names[label]

    def to_rows(self) -> list[Row]:
        """A copy of the rows (absolute paths)."""
        return list(self.rows)

    def write_manifest(self, csv_path: str | os.PathLike) -> Path:
        """Write the rows as a manifest CSV (``path,label[,fold][,split]``; paths relative
        to the CSV's folder when possible). Groups and display names are not part of the
        manifest format."""
        return _write_manifest(csv_path, self.rows)

    def select(self, fold: str | None = None, split: str | None = None) -> list[int]:
        """Indices of the rows in ``fold`` and/or ``split``."""
        return [i for i, r in enumerate(self.rows)
                if (fold is None or r.fold == str(fold)) and (split is None or r.split == split)]

    def partitions(self) -> list[tuple[str, list[int], list[int]]]:
        """``(name, train indices, test indices)`` for each evaluation round of the protocol.

        Folds: one round per fold (test = that fold, train = every other fold). Split: one
        round ``"test"`` (train = split ``train``, test = split ``test``; ``valid`` rows are
        in neither). None: no rounds.
        """
        if self.protocol == "folds":
            out = []
            for f in self.folds:
                test = self.select(fold=f)
                train = [i for i, r in enumerate(self.rows) if r.fold is not None and r.fold != f]
                out.append((f, train, test))
            return out
        if self.protocol == "split":
            return [("test", self.select(split="train"), self.select(split="test"))]
        return []

    def with_names(self, names: Mapping[str, str] | str | os.PathLike | None) -> Dataset:
        """A copy whose display names are overridden by ``names`` (a mapping label -> name
        or the path of a JSON file holding one); labels not in ``names`` keep theirs."""
        if names is None:
            return self
        override = load_names(names) if not isinstance(names, Mapping) else dict(names)
        unknown = sorted(set(override) - set(self.classes))
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise ManifestError(f"{self.title or self.name}: class names given for unknown "
                                f"label(s) {shown} (labels are e.g. {', '.join(self.classes[:5])})")
        for label, value in override.items():
            if not isinstance(value, str) or not value.strip():
                raise ManifestError(f"{self.title or self.name}: class name for '{label}' "
                                    "must be a non-empty string")
        merged = {**self.display_names, **{k: v.strip() for k, v in override.items()}}
        return dataclasses.replace(self, display_names=merged)

    def summary(self) -> str:
        """One line: name, size, classes, protocol."""
        if self.protocol == "folds":
            proto = f"{len(self.folds)} folds"
        elif self.protocol == "split":
            counts = {s: len(self.select(split=s)) for s in self.splits}
            proto = "split " + " / ".join(f"{s} {n}" for s, n in counts.items())
        else:
            proto = "no protocol"
        note = f" ({self.protocol_note})" if self.protocol_note else ""
        return (f"{self.title or self.name}: {len(self.rows)} clips, {len(self.classes)} "
                f"classes, {proto}{note}")


def load_names(source: Mapping[str, str] | str | os.PathLike) -> dict[str, str]:
    """Class-name overrides from a mapping or a JSON file ``{"label": "readable name"}``."""
    if isinstance(source, Mapping):
        return dict(source)
    path = Path(source)
    if not path.is_file():
        raise ManifestError(f"{path}: class-name file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not a JSON file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: must hold a JSON object {{\"label\": \"name\", ...}}")
    return data


# ----------------------------------------------------------------------------- helpers


def _readable(label: str) -> str:
    from mgcl.concepts.prompts import readable_label

    return readable_label(label)


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def _sort_folds(folds: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(folds), key=_natural_key))


def _is_audio(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")


def _audio_files(folder: Path) -> list[Path]:
    """Audio files below ``folder`` (recursively), hidden files and ``__MACOSX`` skipped,
    in natural order of their relative path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        out.extend(Path(dirpath) / f for f in filenames if _is_audio(Path(f)))
    return sorted(out, key=lambda p: _natural_key(p.relative_to(folder).as_posix()))


def _contiguous_folds(n: int, n_folds: int) -> list[str]:
    """Fold ids ``1..n_folds`` for ``n`` ordered items cut into contiguous near-equal blocks."""
    return [str(i * n_folds // n + 1) for i in range(n)]


def _check_root(root: str | os.PathLike, title: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ManifestError(f"{title} root {root}: folder not found")
    return root


def _locate(root: str | os.PathLike, title: str, markers: Sequence[str],
            wrappers: Sequence[str] = (), what: str | None = None) -> tuple[Path, str]:
    """The folder holding any of ``markers`` (relative paths): ``root`` itself, a known
    wrapper folder below it, or the one sub-folder of ``root`` that holds them.

    Returns ``(folder (absolute), the marker found)``.
    """
    root = _check_root(root, title)
    for base in [root, *(root / w for w in wrappers)]:
        for m in markers:
            if (base / m).exists():
                return base.resolve(), m
    hits = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for m in markers:
            if (d / m).exists():
                hits.append((d, m))
                break
    if len(hits) == 1:
        return hits[0][0].resolve(), hits[0][1]
    if len(hits) > 1:
        raise ManifestError(f"{title} root {root}: several sub-folders hold {hits[0][1]} "
                            f"({', '.join(h[0].name for h in hits[:3])}); point at one of them")
    raise ManifestError(f"{title} root {root}: {what or markers[0]} not found")


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _read_csv(path: Path, required: Sequence[str], title: str, base: Path,
              delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV with a header (keys and values stripped); one-line errors."""
    rel = _rel(path, base)
    if not path.is_file():
        raise ManifestError(f"{title} root {base}: {rel} not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise ManifestError(f"{title} root {base}: {rel} lacks column(s) "
                                    f"{', '.join(missing)} (found {', '.join(header) or 'nothing'})")
            reader.fieldnames = header
            rows = [{k: (v or "").strip() for k, v in rec.items() if k is not None}
                    for rec in reader]
    except UnicodeDecodeError:
        raise ManifestError(f"{title} root {base}: {rel} is not a UTF-8 text file") from None
    except csv.Error as exc:
        raise ManifestError(f"{title} root {base}: {rel} is malformed ({exc})") from None
    if not rows:
        raise ManifestError(f"{title} root {base}: {rel} has no rows")
    for line, rec in enumerate(rows, start=2):
        empty = [c for c in required if not rec.get(c)]
        if empty:
            raise ManifestError(f"{title} root {base}: {rel}:{line}: empty {', '.join(empty)}")
    return rows


def _read_lines(path: Path, title: str, base: Path) -> list[list[str]]:
    """Non-empty lines of a tab-separated text file, split into stripped fields."""
    rel = _rel(path, base)
    if not path.is_file():
        raise ManifestError(f"{title} root {base}: {rel} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{title} root {base}: {rel} is not a UTF-8 text file") from None
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        out.append([f.strip() for f in fields])
    return out


def _check_files(rows: Sequence[Row], title: str, base: Path, source: str) -> None:
    """Every row's file exists (one directory listing per folder, not one stat per file)."""
    listing: dict[Path, set[str]] = {}
    missing = []
    for r in rows:
        d = r.path.parent
        if d not in listing:
            try:
                listing[d] = set(os.listdir(d))
            except OSError:
                listing[d] = set()
        if r.path.name not in listing[d]:
            missing.append(r.path)
    if missing:
        raise ManifestError(f"{title} root {base}: {len(missing)} of {len(rows)} audio files "
                            f"listed in {source} are missing (first: {_rel(missing[0], base)})")


def _display(classes: Iterable[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    overrides = overrides or {}
    return {c: overrides.get(c) or _readable(c) for c in classes}


def _make(name: str, rows: list[Row], *, groups: list[str | None] | None = None,
          protocol: str, folds: Iterable[str] = (), display: Mapping[str, str] | None = None,
          protocol_note: str = "", root: Path | None = None) -> Dataset:
    spec = _REGISTRY[name]
    classes = sorted({r.label for r in rows})
    splits = tuple(s for s in SPLITS if any(r.split == s for r in rows))
    return Dataset(
        name=name,
        rows=rows,
        classes=classes,
        display_names=_display(classes, display),
        protocol=protocol,
        folds=_sort_folds(folds) if protocol == "folds" else (),
        splits=splits if protocol == "split" else (),
        groups=list(groups) if groups is not None else [],
        title=spec.title,
        protocol_note=protocol_note,
        citation=spec.citation,
        url=spec.url,
        root=root,
    )


# ----------------------------------------------------------------------------- ESC-50


_ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def _esc(root, name: str, esc10_only: bool, check_files: bool) -> Dataset:
    title = _REGISTRY[name].title
    base, _ = _locate(root, title, ["meta/esc50.csv"], wrappers=["ESC-50-master", "ESC-50"])
    recs = _read_csv(base / "meta" / "esc50.csv", _ESC50_COLUMNS, title, base)
    if esc10_only:
        recs = [r for r in recs if r["esc10"].lower() in ("true", "1", "yes")]
        if not recs:
            raise ManifestError(f"{title} root {base}: no row of meta/esc50.csv has esc10 True")
    rows = [Row(base / "audio" / r["filename"], r["category"], fold=r["fold"]) for r in recs]
    if check_files:
        _check_files(rows, title, base, "meta/esc50.csv")
    return _make(name, rows, groups=[r["src_file"] for r in recs], protocol="folds",
                 folds=(r.fold for r in rows), protocol_note="official folds", root=base)


def load_esc50(root: str | os.PathLike, check_files: bool = True) -> Dataset:
    """ESC-50: 2,000 5-s clips, 50 classes, 5 official folds (group = source recording)."""
    return _esc(root, "esc50", False, check_files)


def load_esc10(root: str | os.PathLike, check_files: bool = True) -> Dataset:
    """ESC-10: the ``esc10 == True`` rows of ESC-50 (400 clips, 10 classes, same 5 folds)."""
    return _esc(root, "esc10", True, check_files)


# ----------------------------------------------------------------------------- UrbanSound8K


_US8K_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")


def load_urbansound8k(root: str | os.PathLike, check_files: bool = True) -> Dataset:
    """UrbanSound8K: 8,732 slices, 10 classes, 10 official folds (group = Freesound id)."""
    title = _REGISTRY["urbansound8k"].title
    base, _ = _locate(root, title, ["metadata/UrbanSound8K.csv"], wrappers=["UrbanSound8K"])
    recs = _read_csv(base / "metadata" / "UrbanSound8K.csv", _US8K_COLUMNS, title, base)
    rows = [Row(base / "audio" / f"fold{r['fold']}" / r["slice_file_name"], r["class"],
                fold=r["fold"]) for r in recs]
    if check_files:
        _check_files(rows, title, base, "metadata/UrbanSound8K.csv")
    return _make("urbansound8k", rows, groups=[r["fsID"] for r in recs], protocol="folds",
                 folds=(r.fold for r in rows), protocol_note="official folds", root=base)


# ----------------------------------------------------------------------------- FSDKaggle2018


_FSD_META = "FSDKaggle2018.meta"
_FSD_TRAIN_CSV = f"{_FSD_META}/train_post_competition.csv"
_FSD_TEST_CSV = f"{_FSD_META}/test_post_competition_scoring_clips.csv"


def load_fsdkaggle2018(root: str | os.PathLike, verified_only: bool = False,
                       check_files: bool = True) -> Dataset:
    """FSDKaggle2018: 41 classes, fixed split (9,473 train clips, 1,600 scored test clips).

    ``verified_only`` keeps only the train clips whose label was manually verified
    (``manually_verified == 1``); test labels are all verified.
    """
    title = _REGISTRY["fsdkaggle2018"].title
    base, _ = _locate(root, title, [_FSD_TRAIN_CSV], wrappers=["FSDKaggle2018"])
    train = _read_csv(base / _FSD_TRAIN_CSV, ("fname", "label", "manually_verified"), title, base)
    test = _read_csv(base / _FSD_TEST_CSV, ("fname", "label"), title, base)
    if verified_only:
        train = [r for r in train if r["manually_verified"] in ("1", "True", "true")]
    rows = [Row(base / "FSDKaggle2018.audio_train" / r["fname"], r["label"], split="train")
            for r in train]
    test_rows = [Row(base / "FSDKaggle2018.audio_test" / r["fname"], r["label"], split="test")
                 for r in test]
    if check_files:
        _check_files(rows, title, base, _FSD_TRAIN_CSV)
        _check_files(test_rows, title, base, _FSD_TEST_CSV)
    return _make("fsdkaggle2018", rows + test_rows, protocol="split",
                 display={"Hi-hat": "hi-hat"}, protocol_note="official split", root=base)


# ----------------------------------------------------------------------------- GTZAN


_GTZAN_GENRES = frozenset({"blues", "classical", "country", "disco", "hiphop", "jazz", "metal",
                           "pop", "reggae", "rock"})
_GTZAN_FILE = re.compile(r"^(?P<genre>[A-Za-z]+)\.(?P<index>\d+)\.[A-Za-z0-9]+$")


def load_gtzan(root: str | os.PathLike, n_folds: int = 10) -> Dataset:
    """GTZAN: 1,000 30-s clips, 10 genres; 10 deterministic folds of contiguous indices.

    A clip ``<genre>.000NN`` goes to fold ``(NN // 10) % n_folds + 1`` (with 100 clips per
    genre and ``n_folds=10``: 00000-00009 -> 1, ..., 00090-00099 -> 10). Note the Kaggle
    copy's ``jazz.00054.wav`` is known to be undecodable.
    """
    title = _REGISTRY["gtzan"].title
    root_p = _check_root(root, title)
    if {p.name for p in root_p.iterdir() if p.is_dir()} & _GTZAN_GENRES:  # the genres folder itself
        base = genres_dir = root_p.resolve()
        marker = "."
    else:
        base, marker = _locate(root_p, title, ["genres_original", "genres"],
                               wrappers=["Data", "gtzan", "GTZAN"],
                               what="genres_original/ (Kaggle) or genres/ (original)")
        genres_dir = base / marker
    rows = []
    for d in sorted(p for p in genres_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in _audio_files(d) if p.parent == d]
        for pos, f in enumerate(files):
            m = _GTZAN_FILE.match(f.name)
            index = int(m["index"]) if m else pos
            rows.append(Row(f, d.name, fold=str((index // 10) % n_folds + 1)))
    if not rows:
        raise ManifestError(f"{title} root {base}: no audio files in "
                            f"{'' if marker == '.' else marker + '/'}<genre>/")
    return _make("gtzan", rows, protocol="folds", folds=(r.fold for r in rows),
                 display={"hiphop": "hip hop"},
                 protocol_note=f"{n_folds} folds of contiguous file indices", root=base)


# ----------------------------------------------------------------------------- VocalSound


_VS_SPLIT_FILES = (("train", "tr"), ("valid", "val"), ("test", "te"))


def _vocalsound_speakers(base: Path, title: str) -> dict[str, str] | None:
    """speaker id -> split from ``meta/{tr,val,te}_meta.csv`` (first column, no header)."""
    paths = [(split, base / "meta" / f"{short}_meta.csv") for split, short in _VS_SPLIT_FILES]
    if not any(p.is_file() for _, p in paths):
        return None
    out: dict[str, str] = {}
    for split, p in paths:
        if not p.is_file():
            raise ManifestError(f"{title} root {base}: {_rel(p, base)} not found")
        with open(p, newline="", encoding="utf-8-sig") as fh:
            for rec in csv.reader(fh):
                if rec and rec[0].strip():
                    out[rec[0].strip()] = split
    return out


def _vocalsound_datafiles(base: Path, title: str) -> dict[str, str] | None:
    """file name -> split from ``datafiles/{tr,val,te}.json`` (``{"data": [{"wav": ...}]}``)."""
    paths = [(split, base / "datafiles" / f"{short}.json") for split, short in _VS_SPLIT_FILES]
    if not any(p.is_file() for _, p in paths):
        return None
    out: dict[str, str] = {}
    for split, p in paths:
        if not p.is_file():
            raise ManifestError(f"{title} root {base}: {_rel(p, base)} not found")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))["data"]
            for item in data:
                out[Path(item["wav"]).name] = split
        except (ValueError, KeyError, TypeError):
            raise ManifestError(f"{title} root {base}: {_rel(p, base)} is not a VocalSound "
                                "datafile ({\"data\": [{\"wav\": ...}]})") from None
    return out


def load_vocalsound(root: str | os.PathLike) -> Dataset:
    """VocalSound: 21,024 clips of 6 vocal sounds, fixed speaker-independent split."""
    title = _REGISTRY["vocalsound"].title
    base, marker = _locate(root, title, ["audio_16k", "audio_44k"],
                           wrappers=["vs_release_16k", "vs_release_44k", "data"],
                           what="audio_16k/")
    by_speaker = _vocalsound_speakers(base, title)
    by_file = None if by_speaker is not None else _vocalsound_datafiles(base, title)
    if by_speaker is None and by_file is None:
        raise ManifestError(f"{title} root {base}: meta/tr_meta.csv (the speaker split) not found")
    rows, groups = [], []
    for f in _audio_files(base / marker):
        parts = f.stem.split("_")
        if len(parts) < 3:
            raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named "
                                "<speaker>_<index>_<label>.wav")
        speaker, label = parts[0], parts[-1]
        split = by_speaker.get(speaker) if by_speaker is not None else by_file.get(f.name)
        rows.append(Row(f, label, split=split))
        groups.append(speaker)
    if not rows:
        raise ManifestError(f"{title} root {base}: no audio files in {marker}/")
    if not any(r.split is not None for r in rows):
        raise ManifestError(f"{title} root {base}: no file belongs to a speaker of the split "
                            "files (meta/*_meta.csv)")
    return _make("vocalsound", rows, groups=groups, protocol="split",
                 display={"throatclearing": "throat clearing"},
                 protocol_note="official speaker split", root=base)


# ----------------------------------------------------------------------------- NSynth


def load_nsynth(root: str | os.PathLike, splits: Sequence[str] = SPLITS,
                check_files: bool = True) -> Dataset:
    """NSynth, instrument family (11 classes; ``synth_lead`` only in train): fixed split.

    Reads ``nsynth-<split>/examples.json`` for each split in ``splits`` that is present
    (at least one must be).
    """
    title = _REGISTRY["nsynth"].title
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ManifestError(f"{title}: unknown split(s) {', '.join(unknown)} (use train, valid, test)")
    base, _ = _locate(root, title, [f"nsynth-{s}/examples.json" for s in splits],
                      wrappers=["nsynth"],
                      what=" or ".join(f"nsynth-{s}/examples.json" for s in splits))
    rows, groups = [], []
    for split in splits:
        meta = base / f"nsynth-{split}" / "examples.json"
        if not meta.is_file():
            continue
        try:
            examples = json.loads(meta.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{title} root {base}: {_rel(meta, base)} is not JSON "
                                f"({str(exc).splitlines()[0]})") from None
        if not isinstance(examples, dict) or not examples:
            raise ManifestError(f"{title} root {base}: {_rel(meta, base)} holds no examples")
        split_rows = []
        for note_str in sorted(examples):
            ex = examples[note_str]
            try:
                family = ex["instrument_family_str"]
            except (KeyError, TypeError):
                raise ManifestError(f"{title} root {base}: {_rel(meta, base)}: example "
                                    f"{note_str} has no instrument_family_str") from None
            split_rows.append(Row(base / f"nsynth-{split}" / "audio" / f"{note_str}.wav",
                                  str(family), split=split))
            groups.append(ex.get("instrument_str"))
        if check_files:
            _check_files(split_rows, title, base, _rel(meta, base))
        rows.extend(split_rows)
    return _make("nsynth", rows, groups=groups, protocol="split",
                 protocol_note="official split", root=base)


# ----------------------------------------------------------------------------- TUT 2017


_TUT_DIR = "TUT-acoustic-scenes-2017-development"


def load_tut2017(root: str | os.PathLike, check_files: bool = True) -> Dataset:
    """TUT Acoustic Scenes 2017 (development): 4,680 10-s segments, 15 scenes, 4 official
    folds (a row's fold is the fold whose ``evaluate`` list holds it)."""
    title = _REGISTRY["tut2017"].title
    base, _ = _locate(root, title, ["meta.txt"], wrappers=[_TUT_DIR], what=f"{_TUT_DIR}/meta.txt")
    meta = _read_lines(base / "meta.txt", title, base)
    fold_of: dict[str, str] = {}
    for k in range(1, 5):
        for fields in _read_lines(base / "evaluation_setup" / f"fold{k}_evaluate.txt", title, base):
            fold_of.setdefault(Path(fields[0]).as_posix(), str(k))
    rows, groups = [], []
    for line, fields in enumerate(meta, start=1):
        if len(fields) < 2:
            raise ManifestError(f"{title} root {base}: meta.txt:{line}: expected "
                                "<file>\\t<scene label>[\\t<identifier>]")
        rel = Path(fields[0]).as_posix()
        rows.append(Row(base / rel, fields[1], fold=fold_of.get(rel)))
        groups.append(fields[2] if len(fields) > 2 and fields[2] else None)
    if check_files:
        _check_files(rows, title, base, "meta.txt")
    no_fold = [r for r in rows if r.fold is None]
    if no_fold:
        raise ManifestError(f"{title} root {base}: {len(no_fold)} files of meta.txt are in no "
                            f"evaluation_setup/fold*_evaluate.txt (first: {_rel(no_fold[0].path, base)})")
    return _make("tut2017", rows, groups=groups, protocol="folds", folds=(r.fold for r in rows),
                 display={"cafe/restaurant": "cafe or restaurant"},
                 protocol_note="official folds", root=base)


# ----------------------------------------------------------------------------- folder layouts


def _class_folders(base: Path) -> list[tuple[str, list[Path]]]:
    out = []
    for d in sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and p.name != "__MACOSX"), key=lambda p: _natural_key(p.name)):
        files = _audio_files(d)
        if files:
            out.append((d.name, files))
    return out


def _folder_rows(classes: list[tuple[str, list[Path]]], n_folds: int | None) -> list[Row]:
    rows = []
    for label, files in classes:
        folds = _contiguous_folds(len(files), n_folds) if n_folds else [None] * len(files)
        rows.extend(Row(f, label, fold=k) for f, k in zip(files, folds))
    return rows


_BEIJING_CLASSES = ("bangu", "daluo", "naobo", "xiaoluo")


def load_beijing_opera(root: str | os.PathLike, n_folds: int = 5) -> Dataset:
    """Beijing Opera Percussion: 4 instrument classes (bangu, daluo, naobo, xiaoluo);
    ``n_folds`` deterministic folds, per class contiguous blocks of the sorted files."""
    title = _REGISTRY["beijing_opera"].title
    root_p = _check_root(root, title)

    def holds(d: Path) -> bool:
        names = {p.name.lower() for p in d.iterdir() if p.is_dir()}
        return all(c in names for c in _BEIJING_CLASSES)

    candidates = [root_p] + sorted(p for p in root_p.iterdir() if p.is_dir())
    candidates += sorted(q for p in candidates[1:] for q in p.iterdir() if q.is_dir())
    base = next((d for d in candidates if holds(d)), None)
    if base is None:
        raise ManifestError(f"{title} root {root_p}: class folders {', '.join(_BEIJING_CLASSES)} "
                            "not found")
    base = base.resolve()
    classes = [(name.lower(), files) for name, files in _class_folders(base)
               if name.lower() in _BEIJING_CLASSES]
    if len(classes) < len(_BEIJING_CLASSES):
        empty = sorted(set(_BEIJING_CLASSES) - {c for c, _ in classes})
        raise ManifestError(f"{title} root {base}: no audio files in {', '.join(empty)}/")
    rows = _folder_rows(classes, n_folds)
    return _make("beijing_opera", rows, protocol="folds", folds=(r.fold for r in rows),
                 display={"bangu": "bangu drum", "daluo": "daluo large gong",
                          "naobo": "naobo cymbals", "xiaoluo": "xiaoluo small gong"},
                 protocol_note=f"{n_folds} folds of contiguous files per class", root=base)


def load_folders(root: str | os.PathLike, n_folds: int | None = None) -> Dataset:
    """Folder per class: every sub-folder of ``root`` is a class, the audio files below it
    (recursively) its clips. With ``n_folds``, each class's files in natural name order
    are cut into that many contiguous folds; without, no protocol."""
    title = _REGISTRY["folders"].title
    base = _check_root(root, title).resolve()
    classes = _class_folders(base)
    if not classes:
        raise ManifestError(f"{title} root {base}: no class sub-folder holds audio files "
                            f"({', '.join(sorted(AUDIO_EXTENSIONS))})")
    if n_folds is not None and (int(n_folds) != n_folds or n_folds < 2):
        raise ManifestError(f"{title}: n_folds must be an integer >= 2, got {n_folds}")
    rows = _folder_rows(classes, n_folds)
    if n_folds:
        return _make("folders", rows, protocol="folds", folds=(r.fold for r in rows),
                     protocol_note=f"{n_folds} folds of contiguous files per class", root=base)
    return _make("folders", rows, protocol="none", root=base)


# ----------------------------------------------------------------------------- speech emotion


_CREMA_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy",
                   "NEU": "neutral", "SAD": "sad"}
_CREMA_FILE = re.compile(r"^(?P<actor>\d+)_(?P<sentence>[A-Z]+)_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]+)$")


def load_crema_d(root: str | os.PathLike, n_folds: int = 5) -> Dataset:
    """CREMA-D: 7,442 clips of 91 actors, 6 emotions (label = the code, e.g. ``ANG``);
    ``n_folds`` speaker-independent folds (sorted actor ids in contiguous blocks)."""
    title = _REGISTRY["crema_d"].title
    base, _ = _locate(root, title, ["AudioWAV"], wrappers=["CREMA-D"], what="AudioWAV/")
    items = []
    for f in _audio_files(base / "AudioWAV"):
        m = _CREMA_FILE.match(f.stem)
        if not m or m["emotion"] not in _CREMA_EMOTIONS:
            raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named "
                                "<actor>_<sentence>_<ANG|DIS|FEA|HAP|NEU|SAD>_<level>.wav")
        items.append((f, m["emotion"], m["actor"]))
    if not items:
        raise ManifestError(f"{title} root {base}: no audio files in AudioWAV/")
    actors = sorted({a for _, _, a in items}, key=int)
    fold_of = dict(zip(actors, _contiguous_folds(len(actors), min(n_folds, len(actors)))))
    rows = [Row(f, emo, fold=fold_of[a]) for f, emo, a in items]
    return _make("crema_d", rows, groups=[a for _, _, a in items], protocol="folds",
                 folds=(r.fold for r in rows), display=_CREMA_EMOTIONS,
                 protocol_note=f"{n_folds} speaker-independent folds of contiguous actor ids",
                 root=base)


_RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                     "06": "fearful", "07": "disgust", "08": "surprised"}
_RAVDESS_FILE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def load_ravdess(root: str | os.PathLike, n_folds: int = 4) -> Dataset:
    """RAVDESS speech (audio-only): 1,440 clips of 24 actors, 8 emotions; ``n_folds``
    speaker-independent folds of consecutive actors (4 folds: actors 1-6, 7-12, ...)."""
    title = _REGISTRY["ravdess"].title
    base, _ = _locate(root, title, ["Actor_01"],
                      wrappers=["Audio_Speech_Actors_01-24", "RAVDESS", "ravdess"],
                      what="Actor_NN/ folders")
    actor_dirs = sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"Actor_\d+", p.name))
    items = []
    for d in actor_dirs:
        for f in _audio_files(d):
            m = _RAVDESS_FILE.match(f.stem)
            if not m:
                raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named "
                                    "MM-VV-EE-II-SS-RR-AA.wav")
            modality, channel, emotion, *_, actor = m.groups()
            if modality != "03" or channel != "01":  # audio-only speech
                continue
            if emotion not in _RAVDESS_EMOTIONS:
                raise ManifestError(f"{title} root {base}: {_rel(f, base)}: unknown emotion "
                                    f"code {emotion} (01..08)")
            items.append((f, _RAVDESS_EMOTIONS[emotion], actor))
    if not items:
        raise ManifestError(f"{title} root {base}: no audio-only speech files "
                            "(03-01-*.wav) in Actor_NN/")
    actors = sorted({a for _, _, a in items}, key=int)
    fold_of = dict(zip(actors, _contiguous_folds(len(actors), min(n_folds, len(actors)))))
    rows = [Row(f, emo, fold=fold_of[a]) for f, emo, a in items]
    return _make("ravdess", rows, groups=[a for _, _, a in items], protocol="folds",
                 folds=(r.fold for r in rows),
                 protocol_note=f"{n_folds} speaker-independent folds of consecutive actors",
                 root=base)


# ----------------------------------------------------------------------------- SESA


_SESA_FILE = re.compile(r"^(?P<cls>.*?[A-Za-z])[_\-\s]*\d+$")


def load_sesa(root: str | os.PathLike) -> Dataset:
    """SESA: surveillance sound events (casual, gunshot, explosion, alarm), fixed split
    ``train/`` (480 files) / ``test/`` (105 files); class = the file-name prefix before
    ``_<n>`` (lower-cased), or the class sub-folder where a split is organised by folder."""
    title = _REGISTRY["sesa"].title
    base, _ = _locate(root, title, ["train"], wrappers=["SESA", "sesa"], what="train/ and test/")
    if not (base / "test").is_dir():
        raise ManifestError(f"{title} root {base}: test/ not found")
    rows = []
    for split in ("train", "test"):
        for f in _audio_files(base / split):
            if f.parent != base / split:  # organised by class folder
                label = f.relative_to(base / split).parts[0].lower()
            else:
                m = _SESA_FILE.match(f.stem)
                if not m:
                    raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named "
                                        "<class>_<n>.wav")
                label = m["cls"].lower()
            rows.append(Row(f, label, split=split))
    for split in ("train", "test"):
        if not any(r.split == split for r in rows):
            raise ManifestError(f"{title} root {base}: no audio files in {split}/")
    return _make("sesa", rows, protocol="split",
                 display={"casual": "casual everyday sound", "alarm": "alarm or siren",
                          "siren": "siren or alarm"},
                 protocol_note="official split", root=base)


# ----------------------------------------------------------------------------- manifest


def load_manifest(root: str | os.PathLike) -> Dataset:
    """A manifest CSV (``path,label[,fold][,split]``): ``root`` is the CSV or a folder
    holding ``manifest.csv``. Protocol: folds when rows carry folds, else split when they
    carry splits, else none."""
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / "manifest.csv"
    rows = read_manifest(path)
    rows = [dataclasses.replace(r, path=Path(os.path.abspath(r.path))) for r in rows]
    if any(r.fold is not None for r in rows):
        protocol = "folds"
    elif any(r.split is not None for r in rows):
        protocol = "split"
    else:
        protocol = "none"
    return _make("manifest", rows, protocol=protocol, folds=(r.fold for r in rows if r.fold),
                 root=path.resolve().parent)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Spec:
    loader: Callable[..., Dataset]
    title: str
    description: str
    citation: str = ""
    url: str = ""


_REGISTRY: dict[str, _Spec] = {
    "esc50": _Spec(
        load_esc50, "ESC-50",
        "ESC-50: 2,000 environmental sounds, 50 classes, 5 official folds",
        'K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", ACM Multimedia 2015.',
        "https://github.com/karolpiczak/ESC-50"),
    "esc10": _Spec(
        load_esc10, "ESC-10",
        "ESC-10: the 10-class, 400-clip subset of ESC-50 (esc10 column), 5 official folds",
        'K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", ACM Multimedia 2015.',
        "https://github.com/karolpiczak/ESC-50"),
    "urbansound8k": _Spec(
        load_urbansound8k, "UrbanSound8K",
        "UrbanSound8K: 8,732 urban sound slices, 10 classes, 10 official folds",
        'J. Salamon, C. Jacoby, J. P. Bello, "A Dataset and Taxonomy for Urban Sound Research", '
        "ACM Multimedia 2014.",
        "https://urbansounddataset.weebly.com/urbansound8k.html"),
    "fsdkaggle2018": _Spec(
        load_fsdkaggle2018, "FSDKaggle2018",
        "FSDKaggle2018: Freesound clips, 41 AudioSet classes, official train/test split",
        'E. Fonseca et al., "General-purpose Tagging of Freesound Audio with AudioSet Labels: '
        'Task Description, Dataset, and Baseline", DCASE 2018 Workshop.',
        "https://zenodo.org/record/2552860"),
    "gtzan": _Spec(
        load_gtzan, "GTZAN",
        "GTZAN: 1,000 music clips, 10 genres, 10 deterministic folds (no official split)",
        'G. Tzanetakis, P. Cook, "Musical genre classification of audio signals", '
        "IEEE Trans. Speech and Audio Processing 10(5), 2002.",
        "https://www.kaggle.com/datasets/andradaolteanu/gtzan-dataset-music-genre-classification"),
    "vocalsound": _Spec(
        load_vocalsound, "VocalSound",
        "VocalSound: 21,024 laughs, sighs, coughs, throat clearings, sneezes, sniffs; "
        "official speaker split",
        'Y. Gong, J. Yu, J. Glass, "VocalSound: A Dataset for Improving Human Vocal Sounds '
        'Recognition", ICASSP 2022.',
        "https://github.com/YuanGongND/vocalsound"),
    "nsynth": _Spec(
        load_nsynth, "NSynth",
        "NSynth: musical notes, 11 instrument families, official train/valid/test split",
        'J. Engel et al., "Neural Audio Synthesis of Musical Notes with WaveNet Autoencoders", '
        "ICML 2017.",
        "https://magenta.tensorflow.org/datasets/nsynth"),
    "tut2017": _Spec(
        load_tut2017, "TUT Acoustic Scenes 2017",
        "TUT Acoustic Scenes 2017 (development): 4,680 segments, 15 scenes, 4 official folds",
        'A. Mesaros et al., "DCASE 2017 Challenge setup: Tasks, datasets and baseline system", '
        "DCASE 2017 Workshop.",
        "https://zenodo.org/record/400515"),
    "beijing_opera": _Spec(
        load_beijing_opera, "Beijing Opera Percussion",
        "Beijing Opera Percussion: 236 strokes of 4 instruments, 5 deterministic folds",
        'M. Tian, A. Srinivasamurthy, M. Sandler, X. Serra, "A study of instrument-wise onset '
        'detection in Beijing Opera percussion ensembles", ICASSP 2014.',
        "https://zenodo.org/records/1285212"),
    "crema_d": _Spec(
        load_crema_d, "CREMA-D",
        "CREMA-D: 7,442 acted sentences, 6 emotions, 5 speaker-independent folds",
        'H. Cao et al., "CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset", '
        "IEEE Trans. Affective Computing 5(4), 2014.",
        "https://github.com/CheyneyComputerScience/CREMA-D"),
    "ravdess": _Spec(
        load_ravdess, "RAVDESS",
        "RAVDESS speech: 1,440 acted utterances, 8 emotions, 4 speaker-independent folds",
        'S. R. Livingstone, F. A. Russo, "The Ryerson Audio-Visual Database of Emotional Speech '
        'and Song (RAVDESS)", PLoS ONE 13(5), 2018.',
        "https://zenodo.org/record/1188976"),
    "sesa": _Spec(
        load_sesa, "SESA",
        "SESA: surveillance sound events (casual, gunshot, explosion, alarm), official "
        "train/test split",
        'T. Spadini, "Sound Events for Surveillance Applications (SESA)", Zenodo, 2019.',
        "https://zenodo.org/records/3519845"),
    "manifest": _Spec(
        load_manifest, "manifest",
        "a manifest CSV (path,label[,fold][,split]); root = the CSV or its folder"),
    "folders": _Spec(
        load_folders, "folders",
        "folder per class: every sub-folder of the root is a class (n_folds= optional)"),
}

_ALIASES = {
    "esc": "esc50", "us8k": "urbansound8k", "urbansound": "urbansound8k",
    "fsd2018": "fsdkaggle2018", "fsdk2018": "fsdkaggle2018", "freesound2018": "fsdkaggle2018",
    "tut": "tut2017", "tutacousticscenes2017": "tut2017", "tutasc2017": "tut2017",
    "dcase2017": "tut2017", "beijingopera": "beijing_opera", "beijingoperapercussion": "beijing_opera",
    "cremad": "crema_d", "folder": "folders", "csv": "manifest",
}


def canonical_name(name: str) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    for canonical in _REGISTRY:
        if re.sub(r"[^a-z0-9]", "", canonical) == key:
            return canonical
    return _ALIASES.get(key)


def available_datasets() -> dict[str, str]:
    """Dataset name -> one-line description, in registry order."""
    return {name: spec.description for name, spec in _REGISTRY.items()}


def load_dataset(name: str, root: str | os.PathLike,
                 names: Mapping[str, str] | str | os.PathLike | None = None,
                 **options) -> Dataset:
    """Load dataset ``name`` (see :func:`available_datasets`; case and punctuation are
    ignored: ``ESC-50``, ``esc50``) from ``root``. ``names`` overrides class display names
    (a mapping label -> name, or a JSON file holding one); ``options`` go to the loader
    (e.g. ``n_folds=`` for folder layouts, ``verified_only=`` for FSDKaggle2018)."""
    canonical = canonical_name(name)
    if canonical is None:
        raise ManifestError(f"unknown dataset '{name}' (choose from {', '.join(_REGISTRY)})")
    spec = _REGISTRY[canonical]
    accepted = [p for p in inspect.signature(spec.loader).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ManifestError(f"{spec.title}: unknown option(s) {', '.join(unknown)} "
                            f"(accepted: {', '.join(accepted) or 'none'})")
    return spec.loader(root, **options).with_names(names)
