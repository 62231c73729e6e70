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
- :func:`fetch_dataset` — the two above for every archive of a registered dataset
  (:data:`SOURCES`), returning the folder that the dataset loaders read.

Checksums come from the publisher (Zenodo shows an md5 per file) or from well-known
loaders that verify them on every download (dcase_util, HEAR, mirdata/soundata). Where
no checksum could be confirmed the entry says ``md5=None`` with a comment: the archive
is then only checked for completeness (its size against Content-Length).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mgcl import __version__
from mgcl.atomic import atomic_write_bytes
from mgcl.errors import MgclError

USER_AGENT = f"mgcl/{__version__} (dataset download; Python-urllib)"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20

# Patched by tests; the back-off between retries sleeps through this.
_sleep = time.sleep

Log = Callable[[str], None]


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

    def __init__(self, source: DatasetSource, dataset_dir: Path):
        self.source = source
        self.dataset_dir = Path(dataset_dir)
        self.instructions = source.manual.format(dir=self.dataset_dir, root=self.dataset_dir.parent)
        super().__init__(
            f"{source.name} needs a manual step and was not found in {self.dataset_dir} "
            f"(see `mgcl data list {source.name}`)"
        )


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Archive:
    """One downloadable file of a dataset.

    ``into`` is the folder, relative to ``--root``, that the archive is unpacked into (``""``:
    the root itself, for archives that carry their own top-level folder). ``optional`` parts
    are fetched only on request. ``size`` is the published size in bytes, when known.
    """

    url: str
    filename: str = ""
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    into: str = ""
    optional: bool = False
    mirrors: tuple[str, ...] = ()
    note: str = ""

    @property
    def name(self) -> str:
        return self.filename or filename_from_url(self.url)

    @property
    def checksum(self) -> str | None:
        """``"md5:HEX"`` / ``"sha256:HEX"`` or None."""
        if self.sha256:
            return f"sha256:{self.sha256.lower()}"
        if self.md5:
            return f"md5:{self.md5.lower()}"
        return None


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and what it unpacks to.

    ``folder`` (relative to ``--root``) is the dataset root that the loaders read; ``expect``
    lists paths inside it that exist once the dataset is complete. ``manual`` (instructions,
    with ``{dir}`` / ``{root}`` placeholders) marks datasets that need a step mgcl cannot do
    (a licence click, a registration, git-lfs).
    """

    name: str
    title: str
    homepage: str
    archives: tuple[Archive, ...]
    folder: str
    licence: str
    citation: str
    expect: tuple[str, ...] = ()
    size: str = "unknown"
    manual: str | None = None
    notes: str = ""

    def parts(self, include_optional: bool = False) -> list[Archive]:
        return [a for a in self.archives if include_optional or not a.optional]

    @property
    def verified(self) -> str:
        """'all' / 'some' / 'none': how many archives carry a recorded checksum."""
        have = [a.checksum is not None for a in self.archives]
        if not have:
            return "none"
        return "all" if all(have) else ("some" if any(have) else "none")


def _zenodo(record: int, filename: str, **kw) -> Archive:
    return Archive(url=f"https://zenodo.org/records/{record}/files/{filename}?download=1", filename=filename, **kw)


def _tut2017_parts() -> tuple[Archive, ...]:
    # md5 and sizes: dcase_util's package list (maintained by the dataset's authors; it
    # verifies them on every download), identical to the Zenodo records 400515 / 1040168.
    dev = "TUT-acoustic-scenes-2017-development"
    ev = "TUT-acoustic-scenes-2017-evaluation"
    parts = [
        _zenodo(400515, f"{dev}.doc.zip", md5="2065495aaf3f1103e795c9899e2af1df", size=54796),
        _zenodo(400515, f"{dev}.meta.zip", md5="9007fd4772d816590c5db5f5e9568f5d", size=104321),
        _zenodo(400515, f"{dev}.error.zip", md5="802c700b021769e52a2c1e3b9c117a1b", size=1432),
    ]
    dev_audio = [
        ("251325a9afaaad0326ad1c57f57d514a", 1071445248),
        ("c26861e05147dc319b4250eb103d9d99", 1073453613),
        ("a4815775f8a5e629179726ee4cd4f55a", 1073077819),
        ("1732b03afe8c53ef8bba80ba14766e57", 1072822038),
        ("611be754a0c951185c6ae4b7643c19a0", 1072644652),
        ("165a201db800d3ea76fce5a9c2bd97d7", 1072667888),
        ("c7d79db84264401c0f8680dcc36013ad", 1073417661),
        ("35043f25123439392338c790494c7a19", 1072381222),
        ("0805dcf5d8e6871dc9610182b2efb93a", 1072087738),
        ("5df83a191295a04e290b125c634e13e7", 1046262120),
    ]
    parts += [_zenodo(400515, f"{dev}.audio.{i}.zip", md5=m, size=s) for i, (m, s) in enumerate(dev_audio, 1)]
    # The evaluation set (the official test split, labels in its meta.zip): optional.
    parts += [
        _zenodo(1040168, f"{ev}.doc.zip", md5="47bbdc0614b468d2bfadbc49e561a320", size=53687, optional=True),
        _zenodo(1040168, f"{ev}.meta.zip", md5="e006cfec14a49dd79a6ab8f8d5b1c5e6", size=4473, optional=True),
    ]
    ev_audio = [
        ("5d97dea8461baec8027ae4a0c2b18d4b", 1071856687),
        ("4085ef5fa286f2169074993a4e405953", 1073362972),
        ("cac432579e7cf2dff0aec7aaed248956", 1071521152),
        ("664bf09c3d24bd26c6b587f1d709de36", 382756463),
    ]
    parts += [
        _zenodo(1040168, f"{ev}.audio.{i}.zip", md5=m, size=s, optional=True)
        for i, (m, s) in enumerate(ev_audio, 1)
    ]
    return tuple(parts)


_NSYNTH = "https://storage.googleapis.com/download.magenta.tensorflow.org/datasets/nsynth"
_NSYNTH_OLD = "http://download.magenta.tensorflow.org/datasets/nsynth"

_CREMA_D_STEPS = """\
CREMA-D is distributed as a git repository whose audio lives in Git LFS; there is no
single archive to download. With git and git-lfs installed (https://git-lfs.com):

  git lfs install
  GIT_LFS_SKIP_SMUDGE=1 git clone https://github.com/CheyneyComputerScience/CREMA-D.git {dir}
  cd {dir} && git lfs pull --include "AudioWAV/*"

(`git lfs pull` without --include also fetches the videos, tens of GB.) Then check that
{dir}/AudioWAV holds 7442 .wav files and run `mgcl data download crema_d --root {root}`
again: it finds the files and prints the folder to pass to the loaders."""

SOURCES: dict[str, DatasetSource] = {}


def register_source(source: DatasetSource) -> DatasetSource:
    """Add (or replace) a dataset entry; returns it."""
    SOURCES[source.name] = source
    return source


for _src in (
    DatasetSource(
        name="esc50",
        title="ESC-50: Dataset for Environmental Sound Classification (2000 clips, 50 classes, 5 folds)",
        homepage="https://github.com/karolpiczak/ESC-50",
        archives=(
            Archive(
                url="https://github.com/karoldvl/ESC-50/archive/master.zip",
                filename="ESC-50-master.zip",
                # md5 recorded by HEAR 2021 and mirdata/soundata for this URL. It is a GitHub
                # *branch* archive: should the branch ever move, the bytes change; then pass
                # --checksum with the new value (or none) after checking the source yourself.
                md5="7771e4b9d86d0945acce719c7a59305a",
            ),
        ),
        folder="ESC-50-master",
        expect=("meta/esc50.csv", "audio"),
        licence="CC BY-NC 3.0",
        citation=(
            'K. J. Piczak. "ESC: Dataset for Environmental Sound Classification." Proc. 23rd ACM '
            "International Conference on Multimedia, 2015. doi:10.1145/2733373.2806390"
        ),
        size="~0.6 GB",
    ),
    DatasetSource(
        name="urbansound8k",
        title="UrbanSound8K (8732 clips <= 4 s, 10 classes, 10 folds)",
        homepage="https://urbansounddataset.weebly.com/urbansound8k.html",
        archives=(
            # md5 as published on Zenodo record 1203745 (also recorded by soundata, paddlespeech).
            Archive(url="https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz",
                    md5="9aa69802bbf37fb986f71ec1483a196e"),
        ),
        folder="UrbanSound8K",
        expect=("metadata/UrbanSound8K.csv", "audio/fold1"),
        licence="CC BY-NC 3.0",
        citation=(
            'J. Salamon, C. Jacoby, J. P. Bello. "A Dataset and Taxonomy for Urban Sound Research." '
            "Proc. 22nd ACM International Conference on Multimedia, 2014. doi:10.1145/2647868.2655045"
        ),
        size="~6 GB",
    ),
    DatasetSource(
        name="fsdkaggle2018",
        title="FSDKaggle2018 (11073 clips, 41 AudioSet classes; DCASE 2018 task 2)",
        homepage="https://zenodo.org/records/2552860",
        archives=tuple(
            # UNVERIFIED: Zenodo publishes an md5 per file, but none could be confirmed
            # here, so none is recorded (size is still checked against Content-Length).
            _zenodo(2552860, f"FSDKaggle2018.{part}.zip", into="FSDKaggle2018")
            for part in ("meta", "doc", "audio_test", "audio_train")
        ),
        folder="FSDKaggle2018",
        expect=("FSDKaggle2018.meta/train_post_competition.csv", "FSDKaggle2018.audio_train",
                "FSDKaggle2018.audio_test"),
        licence="CC BY 4.0 (each clip keeps its own Freesound licence; see the record)",
        citation=(
            'E. Fonseca, M. Plakal, F. Font, D. P. W. Ellis, X. Favory, J. Pons, X. Serra. "General-purpose '
            'Tagging of Freesound Audio with AudioSet Labels: Task Description, Dataset, and Baseline." '
            "Proc. DCASE 2018 Workshop"
        ),
        size="~5 GB",
    ),
    DatasetSource(
        name="gtzan",
        title="GTZAN genre collection (1000 tracks x 30 s, 10 genres)",
        homepage="http://marsyas.info/downloads/datasets.html",
        archives=(
            Archive(
                # The original host (opihi.cs.uvic.ca) has been unreachable for years; the
                # Marsyas organisation's Hugging Face copy comes first, the original second.
                url="https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz",
                mirrors=("http://opihi.cs.uvic.ca/sound/genres.tar.gz",),
                # md5 of the original genres.tar.gz as recorded by mirdata and torchaudio.
                # That the Hugging Face copy is byte-identical is assumed, not verified here.
                md5="5b3d6dddb579ab49814ab86dba69e7c7",
                into="gtzan",
            ),
        ),
        folder="gtzan",
        expect=("genres/blues", "genres/rock"),
        licence="no explicit licence; distributed for research (see marsyas.info)",
        citation=(
            'G. Tzanetakis, P. Cook. "Musical genre classification of audio signals." IEEE Transactions '
            "on Speech and Audio Processing 10(5), 2002"
        ),
        size="~1.2 GB",
    ),
    DatasetSource(
        name="vocalsound",
        title="VocalSound (21k recordings: laughter, sighs, coughs, throat clearing, sneezes, sniffs)",
        homepage="https://github.com/YuanGongND/vocalsound",
        archives=(
            # The authors' 16 kHz release link. UNVERIFIED: no checksum is published.
            Archive(url="https://www.dropbox.com/s/c5ace70qh1vbyzb/vs_release_16k.zip?dl=1",
                    filename="vs_release_16k.zip", into="vocalsound"),
        ),
        folder="vocalsound",
        expect=("audio_16k", "meta"),
        licence="CC BY-SA 4.0",
        citation=(
            'Y. Gong, J. Yu, J. Glass. "VocalSound: A Dataset for Improving Human Vocal Sounds '
            'Recognition." Proc. ICASSP 2022. doi:10.1109/ICASSP43922.2022.9746828'
        ),
    ),
    DatasetSource(
        name="nsynth",
        title="NSynth (musical notes; instrument family classification uses valid/test)",
        homepage="https://magenta.tensorflow.org/datasets/nsynth",
        archives=(
            # md5: recorded by the HEAR 2021 benchmark, which verifies them on download.
            Archive(url=f"{_NSYNTH}/nsynth-valid.jsonwav.tar.gz", mirrors=(f"{_NSYNTH_OLD}/nsynth-valid.jsonwav.tar.gz",),
                    md5="87e94a00a19b6dbc99cf6d4c0c0cae87", size=1068767009, into="nsynth"),
            Archive(url=f"{_NSYNTH}/nsynth-test.jsonwav.tar.gz", mirrors=(f"{_NSYNTH_OLD}/nsynth-test.jsonwav.tar.gz",),
                    md5="5e6f8719bf7e16ad0a00d518b78af77d", into="nsynth"),
            Archive(url=f"{_NSYNTH}/nsynth-train.jsonwav.tar.gz", mirrors=(f"{_NSYNTH_OLD}/nsynth-train.jsonwav.tar.gz",),
                    md5="fde6665a93865503ba598b9fac388660", into="nsynth", optional=True,
                    note="the training split, ~22 GB"),
        ),
        folder="nsynth",
        expect=("nsynth-valid/examples.json", "nsynth-test/examples.json"),
        licence="CC BY 4.0",
        citation=(
            'J. Engel, C. Resnick, A. Roberts, S. Dieleman, D. Eck, K. Simonyan, M. Norouzi. "Neural Audio '
            'Synthesis of Musical Notes with WaveNet Autoencoders." Proc. ICML 2017'
        ),
        size="~1.5 GB (+ ~22 GB for the optional train split)",
    ),
    DatasetSource(
        name="tut2017",
        title="TUT Acoustic Scenes 2017 (DCASE 2017 task 1: 15 scenes, 10 s segments, 4 folds)",
        homepage="https://zenodo.org/records/400515",
        archives=_tut2017_parts(),
        folder="TUT-acoustic-scenes-2017-development",
        expect=("meta.txt", "evaluation_setup", "audio"),
        licence="free for non-commercial research (Tampere University licence, see the records)",
        citation=(
            "A. Mesaros, T. Heittola, A. Diment, B. Elizalde, A. Shah, E. Vincent, B. Raj, T. Virtanen. "
            '"DCASE 2017 Challenge Setup: Tasks, Datasets and Baseline System." Proc. DCASE 2017 Workshop'
        ),
        size="~10.7 GB (+ ~3.6 GB for the optional evaluation set)",
        notes="the optional evaluation set unpacks beside it, into TUT-acoustic-scenes-2017-evaluation",
    ),
    DatasetSource(
        name="beijing_opera",
        title="Beijing Opera Percussion Instrument Dataset (4 instrument classes)",
        homepage="https://zenodo.org/records/1285212",
        archives=(
            # md5 recorded by the HEAR 2021 benchmark (verified on download).
            # Unpacked into ROOT/beijing_opera whatever its inner folders; the loader finds the
            # class folders (bangu, daluo, naobo, xiaoluo) up to two levels below.
            _zenodo(1285212, "beijing_opera_percussion_instrument_1.0.zip", md5="51dc70d02a06b9d96befadf320a6996f",
                    into="beijing_opera"),
        ),
        folder="beijing_opera",
        licence="see the Zenodo record (research use)",
        citation=(
            "M. Tian, A. Srinivasamurthy, M. Sandler, X. Serra. Beijing Opera Percussion Instrument Dataset "
            "(1.0). Zenodo, 2014. doi:10.5281/zenodo.1285212"
        ),
    ),
    DatasetSource(
        name="crema_d",
        title="CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset (7442 clips, 6 emotions)",
        homepage="https://github.com/CheyneyComputerScience/CREMA-D",
        archives=(),
        folder="CREMA-D",
        expect=("AudioWAV",),
        licence="Open Database License (ODbL) 1.0; contents under the Database Contents License 1.0",
        citation=(
            "H. Cao, D. G. Cooper, M. K. Keutmann, R. C. Gur, A. Nenkova, R. Verma. \"CREMA-D: Crowd-sourced "
            'Emotional Multimodal Actors Dataset." IEEE Transactions on Affective Computing 5(4), 2014'
        ),
        manual=_CREMA_D_STEPS,
    ),
    DatasetSource(
        name="ravdess",
        title="RAVDESS audio (speech: 1440 clips, 8 emotions, 24 actors; song optional)",
        homepage="https://zenodo.org/records/1188976",
        archives=(
            # md5 and sizes as published on Zenodo record 1188976 (confirmed by several loaders).
            _zenodo(1188976, "Audio_Speech_Actors_01-24.zip", md5="bc696df654c87fed845eb13823edef8a",
                    size=208468073, into="ravdess"),
            _zenodo(1188976, "Audio_Song_Actors_01-24.zip", md5="5411230427d67a21e18aa4d466e6d1b9",
                    size=225505317, into="ravdess", optional=True, note="the sung recordings"),
        ),
        folder="ravdess",
        expect=("Actor_01",),
        licence="CC BY-NC-SA 4.0",
        citation=(
            'S. R. Livingstone, F. A. Russo. "The Ryerson Audio-Visual Database of Emotional Speech and Song '
            '(RAVDESS)." PLoS ONE 13(5): e0196391, 2018. doi:10.1371/journal.pone.0196391'
        ),
        size="~0.2 GB (+ ~0.2 GB for the optional song part)",
    ),
    DatasetSource(
        name="sesa",
        title="SESA: Sound Events for Surveillance Applications (casual, gunshot, explosion, siren)",
        homepage="https://zenodo.org/records/3519845",
        archives=(
            # UNVERIFIED: Zenodo shows an md5, but none could be confirmed here.
            # Unpacked into ROOT/sesa; train/ and test/ are found there or one folder below.
            _zenodo(3519845, "SESA.zip", into="sesa"),
        ),
        folder="sesa",
        expect=("train", "test"),
        licence="CC BY 4.0 (per the Zenodo record)",
        citation="T. Spadini. Sound Events for Surveillance Applications (SESA). Zenodo, 2019. doi:10.5281/zenodo.3519845",
    ),
):
    register_source(_src)
del _src


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def get_source(name: str) -> DatasetSource:
    """The entry for ``name`` (case, '-' and '_' ignored: 'ESC-50' finds esc50)."""
    wanted = _key(name)
    for src in SOURCES.values():
        if _key(src.name) == wanted:
            return src
    raise MgclError(f"unknown dataset '{name}'; available: {', '.join(SOURCES)}")


# --------------------------------------------------------------------------- helpers
def filename_from_url(url: str) -> str:
    """The last path segment of ``url`` without query ('.../UrbanSound8K.tar.gz?download=1')."""
    name = urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(url).path).name)
    if not name:
        raise MgclError(f"cannot tell a file name from URL '{url}'")
    return name


def part_path(dest: str | os.PathLike) -> Path:
    dest = Path(dest)
    return dest.with_name(dest.name + ".part")


def file_digest(path: str | os.PathLike, algo: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


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
            from tqdm.auto import tqdm

            if self.bar is None:
                self.bar = tqdm(total=total, initial=initial, desc=self.desc, unit="B", unit_scale=True,
                                unit_divisor=1024, file=sys.stderr, leave=False)
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
    return (int(start) if start else None, int(end) if end else None,
            int(total) if total and total != "*" else None)


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
    log = log or (lambda msg: None)
    checks = [(a, v.lower()) for a, v in (("md5", md5), ("sha256", sha256)) if v]
    if dest.exists():
        if not dest.is_file():
            raise DownloadError(f"{dest}: exists and is not a file")
        for algo, expected in checks:
            actual = file_digest(dest, algo)
            if actual != expected:
                raise ChecksumError(
                    f"{dest}: {algo} is {actual}, expected {expected}; the file is not used "
                    f"(delete it to download again)", dest, algo, expected, actual)
        log(f"{dest.name}: already downloaded" + (" and verified" if checks else ""))
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    _fetch(url, part, progress=progress, timeout=timeout, retries=retries, backoff=backoff, log=log,
           desc=dest.name)
    for algo, expected in checks:
        actual = file_digest(part, algo)
        if actual != expected:
            raise ChecksumError(
                f"{url}: {algo} of the download is {actual}, expected {expected}; kept as {part} "
                f"and not used (delete it to download again)", part, algo, expected, actual)
        log(f"{dest.name}: {algo} verified ({expected})")
    os.replace(part, dest)
    return dest


def _fetch(url: str, part: Path, *, progress, timeout: float, retries: int, backoff: float, log: Log,
           desc: str) -> None:
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
                raise DownloadError(f"{part.parent}: {_human(total - have)} still to download but only "
                                    f"{_human(free)} free")
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
                        raise _Retry(f"connection lost after {_human(have + got)} ({exc.__class__.__name__})",
                                     progressed=got > 0) from None
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
            f"{archive.name}: member '{name}' would be written outside the target folder; refusing to extract")
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
                    "refusing to extract")
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
    log = log or (lambda msg: None)
    if not archive.is_file():
        raise MgclError(f"{archive}: archive not found")
    if checksum is None:
        checksum = "sha256:" + file_digest(archive, "sha256")
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
            from mgcl.progress import progress_bar

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
    info = {"archive": archive.name, "checksum": checksum, "entries": entries,
            "extracted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
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
    src = get_source(name)
    return _find_dataset_dir(Path(root) / src.folder, src.expect)


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
    unpacked as the registry says; parts already extracted (marker present) are skipped, so
    a second call costs nothing and an interrupted one resumes. ``url`` overrides the source:
    for a one-archive dataset the archive's URL, otherwise a base URL ending in '/' to which
    each archive's file name is appended (a mirror). ``checksum``: True (the recorded ones),
    or an override for a one-archive dataset ('md5:HEX', 'sha256:HEX', or None / 'none' to
    skip verification). Datasets that need a manual step raise :class:`ManualStepRequired`
    unless their files are already in place. The returned folder is the dataset root that
    the loaders read (e.g. ``root/ESC-50-master``).
    """
    src = get_source(name)
    root = Path(root).expanduser()
    log = log or (lambda msg: None)
    target = root / src.folder
    if src.manual:
        found = _find_dataset_dir(target, src.expect)
        if found is None:
            raise ManualStepRequired(src, target)
        log(f"{src.name}: found in {found}")
        return found
    parts = src.parts(include_optional)
    override = None
    if checksum is not True:
        if len(parts) != 1:
            raise MgclError(f"a checksum override needs a one-archive dataset; {src.name} has {len(parts)} archives")
        override = parse_checksum(checksum) if isinstance(checksum, str) else None
    if url is not None and len(parts) > 1 and not url.endswith("/"):
        raise MgclError(f"{src.name} has {len(parts)} archives: give --url as a base URL ending in '/' "
                        "(each archive's file name is appended)")
    root.mkdir(parents=True, exist_ok=True)
    for i, arc in enumerate(parts, 1):
        into = root / arc.into if arc.into else root
        algo_value = override if checksum is not True else (
            ("sha256", arc.sha256.lower()) if arc.sha256 else ("md5", arc.md5.lower()) if arc.md5 else None)
        recorded = f"{algo_value[0]}:{algo_value[1]}" if algo_value else None
        if is_extracted(into, arc.name, recorded):
            log(f"[{i}/{len(parts)}] {arc.name}: already downloaded and extracted")
            continue
        urls = [url if len(parts) == 1 else url + arc.name] if url is not None else [arc.url, *arc.mirrors]
        dest = root / arc.name
        log(f"[{i}/{len(parts)}] {arc.name} ({_human(arc.size) if arc.size else 'size from the server'}"
            f"{', ' + algo_value[0] + ' ' + algo_value[1] if algo_value else ', no recorded checksum'})")
        for k, u in enumerate(urls):
            log(f"downloading {u}")
            try:
                download(u, dest, md5=algo_value[1] if algo_value and algo_value[0] == "md5" else None,
                         sha256=algo_value[1] if algo_value and algo_value[0] == "sha256" else None,
                         progress=progress, timeout=timeout, retries=retries, log=log)
                break
            except ChecksumError:
                raise
            except DownloadError as exc:
                if k + 1 == len(urls):
                    raise
                log(f"{exc}; trying the next mirror")
        if recorded is None:
            recorded = "sha256:" + file_digest(dest, "sha256")
        extract(dest, into, checksum=recorded, progress=progress, log=log)
        if not keep_archive:
            dest.unlink()
    found = _find_dataset_dir(target, src.expect)
    if found is None:
        missing = [e for e in src.expect if not (target / e).exists()] or [src.folder]
        present = sorted(p.name for p in target.iterdir())[:8] if target.is_dir() else []
        raise MgclError(
            f"{src.name}: extracted under {root}, but '{target / missing[0]}' is missing "
            f"(found in {target}: {', '.join(present) or 'nothing'}); the archive layout may have changed")
    return found
