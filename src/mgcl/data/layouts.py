"""The loaders of the field's datasets, each reading one dataset's layout as distributed.

``load_esc50(root)``, ``load_urbansound8k(root)``, ... return a
:class:`~mgcl.data.sources.Dataset`: rows ``(path, label, fold, split)`` with absolute
paths, a readable name per class for text prompts (``air_conditioner`` -> ``air
conditioner``), the protocol the field uses for it (cross-validation ``folds`` or a fixed
``split``, :func:`~mgcl.data.sources.protocol_of`), a group per row (source recording,
speaker, actor...) for group-aware splits, and the title, citation and homepage of its
:mod:`mgcl.data.catalog` entry. :func:`mgcl.data.catalog.load_dataset` finds a loader by
name and applies class-name overrides.

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
                   clips; random support and query, or ``n_folds=`` contiguous folds as for
                   Beijing Opera.
=================  ===========================================================================
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from mgcl.data.manifest import Row, read_csv_records, read_manifest
from mgcl.data.sources import SPLITS, Dataset
from mgcl.errors import ManifestError
from mgcl.util.text import natural_key, readable_label

#: File suffixes (lower case) that the folder layouts treat as audio.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".au", ".aif", ".aiff", ".opus", ".m4a"})


# ----------------------------------------------------------------------------- helpers


def _is_audio(p: Path) -> bool:
    return p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")


def _audio_files(folder: Path) -> list[Path]:
    """Audio files below ``folder`` (recursively), hidden files and ``__MACOSX`` skipped,
    in natural order of their relative path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        out.extend(Path(dirpath) / f for f in filenames if _is_audio(Path(f)))
    return sorted(out, key=lambda p: natural_key(p.relative_to(folder).as_posix()))


def _contiguous_folds(n: int, n_folds: int) -> list[str]:
    """Fold ids ``1..n_folds`` for ``n`` ordered items cut into contiguous near-equal blocks."""
    return [str(i * n_folds // n + 1) for i in range(n)]


def _check_root(root: str | os.PathLike, title: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ManifestError(f"{title} root {root}: folder not found")
    return root


def _locate(
    root: str | os.PathLike, title: str, markers: Sequence[str], wrappers: Sequence[str] = (), what: str | None = None
) -> tuple[Path, str]:
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
        raise ManifestError(
            f"{title} root {root}: several sub-folders hold {hits[0][1]} "
            f"({', '.join(h[0].name for h in hits[:3])}); point at one of them"
        )
    raise ManifestError(f"{title} root {root}: {what or markers[0]} not found")


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _read_csv(path: Path, required: Sequence[str], title: str, base: Path) -> list[dict[str, str]]:
    """Records of a metadata CSV of a layout (:func:`mgcl.data.manifest.read_csv_records`)."""
    if not path.is_file():
        raise ManifestError(f"{title} root {base}: {_rel(path, base)} not found")
    return read_csv_records(path, required, f"{title} root {base}: {_rel(path, base)}")


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
        raise ManifestError(
            f"{title} root {base}: {len(missing)} of {len(rows)} audio files "
            f"listed in {source} are missing (first: {_rel(missing[0], base)})"
        )


#: Each layout's short title (error messages, reports); the catalog's entries use them too.
TITLES = {
    "esc50": "ESC-50",
    "esc10": "ESC-10",
    "urbansound8k": "UrbanSound8K",
    "fsdkaggle2018": "FSDKaggle2018",
    "gtzan": "GTZAN",
    "vocalsound": "VocalSound",
    "nsynth": "NSynth",
    "tut2017": "TUT Acoustic Scenes 2017",
    "beijing_opera": "Beijing Opera Percussion",
    "crema_d": "CREMA-D",
    "ravdess": "RAVDESS",
    "sesa": "SESA",
    "manifest": "manifest",
    "folders": "folders",
}


def _make(
    name: str,
    rows: list[Row],
    *,
    groups: Sequence[str | None] | None = None,
    display: Mapping[str, str] | None = None,
    protocol_note: str = "",
    root: Path,
    manifest: Path | None = None,
) -> Dataset:
    """The :class:`Dataset` of layout ``name``: readable names (``display`` overrides
    :func:`mgcl.util.text.readable_label`) and its title; the protocol follows from the rows
    (:func:`mgcl.data.sources.protocol_of`). The catalog adds citation and homepage."""
    display = display or {}
    return Dataset(
        name=name,
        rows=rows,
        display_names={c: display.get(c) or readable_label(c) for c in {r.label for r in rows}},
        title=TITLES[name],
        protocol_note=protocol_note,
        groups=list(groups) if groups is not None else [],
        root=root,
        manifest=manifest,
    )


def _title(name: str) -> str:
    return TITLES[name]


# ----------------------------------------------------------------------------- ESC-50


_ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def _esc(root, name: str, esc10_only: bool, check_files: bool) -> Dataset:
    title = _title(name)
    base, _ = _locate(root, title, ["meta/esc50.csv"], wrappers=["ESC-50-master", "ESC-50"])
    recs = _read_csv(base / "meta" / "esc50.csv", _ESC50_COLUMNS, title, base)
    if esc10_only:
        recs = [r for r in recs if r["esc10"].lower() in ("true", "1", "yes")]
        if not recs:
            raise ManifestError(f"{title} root {base}: no row of meta/esc50.csv has esc10 True")
    rows = [Row(base / "audio" / r["filename"], r["category"], fold=r["fold"]) for r in recs]
    if check_files:
        _check_files(rows, title, base, "meta/esc50.csv")
    return _make(name, rows, groups=[r["src_file"] for r in recs], protocol_note="official folds", root=base)


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
    title = _title("urbansound8k")
    base, _ = _locate(root, title, ["metadata/UrbanSound8K.csv"], wrappers=["UrbanSound8K"])
    recs = _read_csv(base / "metadata" / "UrbanSound8K.csv", _US8K_COLUMNS, title, base)
    rows = [Row(base / "audio" / f"fold{r['fold']}" / r["slice_file_name"], r["class"], fold=r["fold"]) for r in recs]
    if check_files:
        _check_files(rows, title, base, "metadata/UrbanSound8K.csv")
    return _make("urbansound8k", rows, groups=[r["fsID"] for r in recs], protocol_note="official folds", root=base)


# ----------------------------------------------------------------------------- FSDKaggle2018


_FSD_META = "FSDKaggle2018.meta"
_FSD_TRAIN_CSV = f"{_FSD_META}/train_post_competition.csv"
_FSD_TEST_CSV = f"{_FSD_META}/test_post_competition_scoring_clips.csv"


def load_fsdkaggle2018(root: str | os.PathLike, verified_only: bool = False, check_files: bool = True) -> Dataset:
    """FSDKaggle2018: 41 classes, fixed split (9,473 train clips, 1,600 scored test clips).

    ``verified_only`` keeps only the train clips whose label was manually verified
    (``manually_verified == 1``); test labels are all verified.
    """
    title = _title("fsdkaggle2018")
    base, _ = _locate(root, title, [_FSD_TRAIN_CSV], wrappers=["FSDKaggle2018"])
    train = _read_csv(base / _FSD_TRAIN_CSV, ("fname", "label", "manually_verified"), title, base)
    test = _read_csv(base / _FSD_TEST_CSV, ("fname", "label"), title, base)
    if verified_only:
        train = [r for r in train if r["manually_verified"] in ("1", "True", "true")]
    rows = [Row(base / "FSDKaggle2018.audio_train" / r["fname"], r["label"], split="train") for r in train]
    test_rows = [Row(base / "FSDKaggle2018.audio_test" / r["fname"], r["label"], split="test") for r in test]
    if check_files:
        _check_files(rows, title, base, _FSD_TRAIN_CSV)
        _check_files(test_rows, title, base, _FSD_TEST_CSV)
    return _make(
        "fsdkaggle2018", rows + test_rows, display={"Hi-hat": "hi-hat"}, protocol_note="official split", root=base
    )


# ----------------------------------------------------------------------------- GTZAN


_GTZAN_GENRES = frozenset(
    {"blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"}
)
_GTZAN_FILE = re.compile(r"^(?P<genre>[A-Za-z]+)\.(?P<index>\d+)\.[A-Za-z0-9]+$")


def load_gtzan(root: str | os.PathLike, n_folds: int = 10) -> Dataset:
    """GTZAN: 1,000 30-s clips, 10 genres; 10 deterministic folds of contiguous indices.

    A clip ``<genre>.000NN`` goes to fold ``(NN // 10) % n_folds + 1`` (with 100 clips per
    genre and ``n_folds=10``: 00000-00009 -> 1, ..., 00090-00099 -> 10). Note the Kaggle
    copy's ``jazz.00054.wav`` is known to be undecodable.
    """
    title = _title("gtzan")
    root_p = _check_root(root, title)
    if {p.name for p in root_p.iterdir() if p.is_dir()} & _GTZAN_GENRES:  # the genres folder itself
        base = genres_dir = root_p.resolve()
        marker = "."
    else:
        base, marker = _locate(
            root_p,
            title,
            ["genres_original", "genres"],
            wrappers=["Data", "gtzan", "GTZAN"],
            what="genres_original/ (Kaggle) or genres/ (original)",
        )
        genres_dir = base / marker
    rows = []
    for d in sorted(p for p in genres_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in _audio_files(d) if p.parent == d]
        for pos, f in enumerate(files):
            m = _GTZAN_FILE.match(f.name)
            index = int(m["index"]) if m else pos
            rows.append(Row(f, d.name, fold=str((index // 10) % n_folds + 1)))
    if not rows:
        raise ManifestError(f"{title} root {base}: no audio files in {'' if marker == '.' else marker + '/'}<genre>/")
    return _make(
        "gtzan",
        rows,
        display={"hiphop": "hip hop"},
        protocol_note=f"{n_folds} folds of contiguous file indices",
        root=base,
    )


# ----------------------------------------------------------------------------- VocalSound


_VS_SPLIT_FILES = (("train", "tr"), ("valid", "val"), ("test", "te"))


def _vocalsound_split(base: Path, title: str, pattern: str, keys) -> dict[str, str] | None:
    """key -> split from the three split files ``pattern.format(tr|val|te)`` below ``base``
    (``keys(path)``: the keys one file lists); None when none of them exists."""
    paths = [(split, base / pattern.format(short)) for split, short in _VS_SPLIT_FILES]
    if not any(p.is_file() for _, p in paths):
        return None
    out: dict[str, str] = {}
    for split, p in paths:
        if not p.is_file():
            raise ManifestError(f"{title} root {base}: {_rel(p, base)} not found")
        out.update((key, split) for key in keys(p))
    return out


def _speaker_ids(path: Path) -> list[str]:
    """The first column of an official ``meta/*_meta.csv`` (no header): speaker ids."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [rec[0].strip() for rec in csv.reader(fh) if rec and rec[0].strip()]


def _datafile_names(path: Path, title: str, base: Path) -> list[str]:
    """The file names a ``datafiles/*.json`` (``{"data": [{"wav": ...}]}``) lists."""
    try:
        return [Path(item["wav"]).name for item in json.loads(path.read_text(encoding="utf-8"))["data"]]
    except (ValueError, KeyError, TypeError):
        raise ManifestError(
            f'{title} root {base}: {_rel(path, base)} is not a VocalSound datafile ({{"data": [{{"wav": ...}}]}})'
        ) from None


def load_vocalsound(root: str | os.PathLike) -> Dataset:
    """VocalSound: 21,024 clips of 6 vocal sounds, fixed speaker-independent split."""
    title = _title("vocalsound")
    base, marker = _locate(
        root,
        title,
        ["audio_16k", "audio_44k"],
        wrappers=["vs_release_16k", "vs_release_44k", "data"],
        what="audio_16k/",
    )
    by_speaker = _vocalsound_split(base, title, "meta/{}_meta.csv", _speaker_ids)
    by_file = (
        None
        if by_speaker is not None
        else _vocalsound_split(base, title, "datafiles/{}.json", lambda p: _datafile_names(p, title, base))
    )
    if by_speaker is None and by_file is None:
        raise ManifestError(f"{title} root {base}: meta/tr_meta.csv (the speaker split) not found")
    rows, groups = [], []
    for f in _audio_files(base / marker):
        parts = f.stem.split("_")
        if len(parts) < 3:
            raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named <speaker>_<index>_<label>.wav")
        speaker, label = parts[0], parts[-1]
        split = by_speaker.get(speaker) if by_speaker is not None else by_file.get(f.name)
        rows.append(Row(f, label, split=split))
        groups.append(speaker)
    if not rows:
        raise ManifestError(f"{title} root {base}: no audio files in {marker}/")
    if not any(r.split is not None for r in rows):
        raise ManifestError(f"{title} root {base}: no file belongs to a speaker of the split files (meta/*_meta.csv)")
    return _make(
        "vocalsound",
        rows,
        groups=groups,
        display={"throatclearing": "throat clearing"},
        protocol_note="official speaker split",
        root=base,
    )


# ----------------------------------------------------------------------------- NSynth


def load_nsynth(root: str | os.PathLike, splits: Sequence[str] = SPLITS, check_files: bool = True) -> Dataset:
    """NSynth, instrument family (11 classes; ``synth_lead`` only in train): fixed split.

    Reads ``nsynth-<split>/examples.json`` for each split in ``splits`` that is present
    (at least one must be).
    """
    title = _title("nsynth")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ManifestError(f"{title}: unknown split(s) {', '.join(unknown)} (use train, valid, test)")
    base, _ = _locate(
        root,
        title,
        [f"nsynth-{s}/examples.json" for s in splits],
        wrappers=["nsynth"],
        what=" or ".join(f"nsynth-{s}/examples.json" for s in splits),
    )
    rows, groups = [], []
    for split in splits:
        meta = base / f"nsynth-{split}" / "examples.json"
        if not meta.is_file():
            continue
        try:
            examples = json.loads(meta.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(
                f"{title} root {base}: {_rel(meta, base)} is not JSON ({str(exc).splitlines()[0]})"
            ) from None
        if not isinstance(examples, dict) or not examples:
            raise ManifestError(f"{title} root {base}: {_rel(meta, base)} holds no examples")
        split_rows = []
        for note_str in sorted(examples):
            ex = examples[note_str]
            try:
                family = ex["instrument_family_str"]
            except (KeyError, TypeError):
                raise ManifestError(
                    f"{title} root {base}: {_rel(meta, base)}: example {note_str} has no instrument_family_str"
                ) from None
            split_rows.append(Row(base / f"nsynth-{split}" / "audio" / f"{note_str}.wav", str(family), split=split))
            groups.append(ex.get("instrument_str"))
        if check_files:
            _check_files(split_rows, title, base, _rel(meta, base))
        rows.extend(split_rows)
    return _make("nsynth", rows, groups=groups, protocol_note="official split", root=base)


# ----------------------------------------------------------------------------- TUT 2017


_TUT_DIR = "TUT-acoustic-scenes-2017-development"


def load_tut2017(root: str | os.PathLike, check_files: bool = True) -> Dataset:
    """TUT Acoustic Scenes 2017 (development): 4,680 10-s segments, 15 scenes, 4 official
    folds (a row's fold is the fold whose ``evaluate`` list holds it)."""
    title = _title("tut2017")
    base, _ = _locate(root, title, ["meta.txt"], wrappers=[_TUT_DIR], what=f"{_TUT_DIR}/meta.txt")
    meta = _read_lines(base / "meta.txt", title, base)
    fold_of: dict[str, str] = {}
    for k in range(1, 5):
        for fields in _read_lines(base / "evaluation_setup" / f"fold{k}_evaluate.txt", title, base):
            fold_of.setdefault(Path(fields[0]).as_posix(), str(k))
    rows, groups = [], []
    for line, fields in enumerate(meta, start=1):
        if len(fields) < 2:
            raise ManifestError(
                f"{title} root {base}: meta.txt:{line}: expected <file>\\t<scene label>[\\t<identifier>]"
            )
        rel = Path(fields[0]).as_posix()
        rows.append(Row(base / rel, fields[1], fold=fold_of.get(rel)))
        groups.append(fields[2] if len(fields) > 2 and fields[2] else None)
    if check_files:
        _check_files(rows, title, base, "meta.txt")
    no_fold = [r for r in rows if r.fold is None]
    if no_fold:
        raise ManifestError(
            f"{title} root {base}: {len(no_fold)} files of meta.txt are in no "
            f"evaluation_setup/fold*_evaluate.txt (first: {_rel(no_fold[0].path, base)})"
        )
    return _make(
        "tut2017",
        rows,
        groups=groups,
        display={"cafe/restaurant": "cafe or restaurant"},
        protocol_note="official folds",
        root=base,
    )


# ----------------------------------------------------------------------------- folder layouts


def _class_folders(base: Path) -> list[tuple[str, list[Path]]]:
    out = []
    for d in sorted(
        (p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != "__MACOSX"),
        key=lambda p: natural_key(p.name),
    ):
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
    title = _title("beijing_opera")
    root_p = _check_root(root, title)

    def holds(d: Path) -> bool:
        names = {p.name.lower() for p in d.iterdir() if p.is_dir()}
        return all(c in names for c in _BEIJING_CLASSES)

    candidates = [root_p] + sorted(p for p in root_p.iterdir() if p.is_dir())
    candidates += sorted(q for p in candidates[1:] for q in p.iterdir() if q.is_dir())
    base = next((d for d in candidates if holds(d)), None)
    if base is None:
        raise ManifestError(f"{title} root {root_p}: class folders {', '.join(_BEIJING_CLASSES)} not found")
    base = base.resolve()
    classes = [(name.lower(), files) for name, files in _class_folders(base) if name.lower() in _BEIJING_CLASSES]
    if len(classes) < len(_BEIJING_CLASSES):
        empty = sorted(set(_BEIJING_CLASSES) - {c for c, _ in classes})
        raise ManifestError(f"{title} root {base}: no audio files in {', '.join(empty)}/")
    rows = _folder_rows(classes, n_folds)
    return _make(
        "beijing_opera",
        rows,
        display={
            "bangu": "bangu drum",
            "daluo": "daluo large gong",
            "naobo": "naobo cymbals",
            "xiaoluo": "xiaoluo small gong",
        },
        protocol_note=f"{n_folds} folds of contiguous files per class",
        root=base,
    )


def load_folders(root: str | os.PathLike, n_folds: int | None = None) -> Dataset:
    """Folder per class: every sub-folder of ``root`` is a class, the audio files below it
    (recursively) its clips. With ``n_folds``, each class's files in natural name order
    are cut into that many contiguous folds; without, support and query are drawn at random."""
    title = _title("folders")
    base = _check_root(root, title).resolve()
    classes = _class_folders(base)
    if not classes:
        raise ManifestError(
            f"{title} root {base}: no class sub-folder holds audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    if n_folds is not None and (int(n_folds) != n_folds or n_folds < 2):
        raise ManifestError(f"{title}: n_folds must be an integer >= 2, got {n_folds}")
    note = f"{n_folds} folds of contiguous files per class" if n_folds else ""
    return _make("folders", _folder_rows(classes, n_folds), protocol_note=note, root=base)


# ----------------------------------------------------------------------------- speech emotion


def _speaker_folds(items: list[tuple[Path, str, str]], n_folds: int) -> tuple[list[Row], list[str]]:
    """Rows of ``(file, label, speaker id)`` items in ``n_folds`` speaker-independent folds
    (the sorted numeric speaker ids cut into contiguous blocks), and each row's speaker."""
    speakers = sorted({s for _, _, s in items}, key=int)
    fold_of = dict(zip(speakers, _contiguous_folds(len(speakers), min(n_folds, len(speakers)))))
    return [Row(f, label, fold=fold_of[s]) for f, label, s in items], [s for _, _, s in items]


_CREMA_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA_FILE = re.compile(r"^(?P<actor>\d+)_(?P<sentence>[A-Z]+)_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]+)$")


def load_crema_d(root: str | os.PathLike, n_folds: int = 5) -> Dataset:
    """CREMA-D: 7,442 clips of 91 actors, 6 emotions (label = the code, e.g. ``ANG``);
    ``n_folds`` speaker-independent folds (sorted actor ids in contiguous blocks)."""
    title = _title("crema_d")
    base, _ = _locate(root, title, ["AudioWAV"], wrappers=["CREMA-D"], what="AudioWAV/")
    items = []
    for f in _audio_files(base / "AudioWAV"):
        m = _CREMA_FILE.match(f.stem)
        if not m or m["emotion"] not in _CREMA_EMOTIONS:
            raise ManifestError(
                f"{title} root {base}: {_rel(f, base)} is not named "
                "<actor>_<sentence>_<ANG|DIS|FEA|HAP|NEU|SAD>_<level>.wav"
            )
        items.append((f, m["emotion"], m["actor"]))
    if not items:
        raise ManifestError(f"{title} root {base}: no audio files in AudioWAV/")
    rows, actors = _speaker_folds(items, n_folds)
    return _make(
        "crema_d",
        rows,
        groups=actors,
        display=_CREMA_EMOTIONS,
        protocol_note=f"{n_folds} speaker-independent folds of contiguous actor ids",
        root=base,
    )


_RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_RAVDESS_FILE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def load_ravdess(root: str | os.PathLike, n_folds: int = 4) -> Dataset:
    """RAVDESS speech (audio-only): 1,440 clips of 24 actors, 8 emotions; ``n_folds``
    speaker-independent folds of consecutive actors (4 folds: actors 1-6, 7-12, ...)."""
    title = _title("ravdess")
    base, _ = _locate(
        root,
        title,
        ["Actor_01"],
        wrappers=["Audio_Speech_Actors_01-24", "RAVDESS", "ravdess"],
        what="Actor_NN/ folders",
    )
    actor_dirs = sorted(p for p in base.iterdir() if p.is_dir() and re.fullmatch(r"Actor_\d+", p.name))
    items = []
    for d in actor_dirs:
        for f in _audio_files(d):
            m = _RAVDESS_FILE.match(f.stem)
            if not m:
                raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named MM-VV-EE-II-SS-RR-AA.wav")
            modality, channel, emotion, *_, actor = m.groups()
            if modality != "03" or channel != "01":  # audio-only speech
                continue
            if emotion not in _RAVDESS_EMOTIONS:
                raise ManifestError(f"{title} root {base}: {_rel(f, base)}: unknown emotion code {emotion} (01..08)")
            items.append((f, _RAVDESS_EMOTIONS[emotion], actor))
    if not items:
        raise ManifestError(f"{title} root {base}: no audio-only speech files (03-01-*.wav) in Actor_NN/")
    rows, actors = _speaker_folds(items, n_folds)
    return _make(
        "ravdess",
        rows,
        groups=actors,
        protocol_note=f"{n_folds} speaker-independent folds of consecutive actors",
        root=base,
    )


# ----------------------------------------------------------------------------- SESA


_SESA_FILE = re.compile(r"^(?P<cls>.*?[A-Za-z])[_\-\s]*\d+$")


def load_sesa(root: str | os.PathLike) -> Dataset:
    """SESA: surveillance sound events (casual, gunshot, explosion, alarm), fixed split
    ``train/`` (480 files) / ``test/`` (105 files); class = the file-name prefix before
    ``_<n>`` (lower-cased), or the class sub-folder where a split is organised by folder."""
    title = _title("sesa")
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
                    raise ManifestError(f"{title} root {base}: {_rel(f, base)} is not named <class>_<n>.wav")
                label = m["cls"].lower()
            rows.append(Row(f, label, split=split))
    for split in ("train", "test"):
        if not any(r.split == split for r in rows):
            raise ManifestError(f"{title} root {base}: no audio files in {split}/")
    display = {"casual": "casual everyday sound", "alarm": "alarm or siren", "siren": "siren or alarm"}
    return _make("sesa", rows, display=display, protocol_note="official split", root=base)


# ----------------------------------------------------------------------------- manifest


def load_manifest(root: str | os.PathLike) -> Dataset:
    """A manifest CSV (``path,label[,fold][,split]``): ``root`` is the CSV or a folder
    holding ``manifest.csv``; paths made absolute, labels made readable."""
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / "manifest.csv"
    rows = [dataclasses.replace(r, path=Path(os.path.abspath(r.path))) for r in read_manifest(path)]
    return _make("manifest", rows, root=path.resolve().parent, manifest=path.resolve())
