"""The datasets mgcl knows: one :class:`Entry` per dataset, read by the loaders and by ``mgcl data``.

An entry holds everything about one dataset: its name and aliases, a short title (error
messages, summaries), a one-line description, the citation and the homepage; the loader
that reads its official layout (:mod:`mgcl.data.layouts`); and, for a dataset mgcl can
fetch, what :func:`mgcl.data.download.fetch_dataset` downloads: the archives with their
checksums, the folder they unpack to and the paths that show it is complete, the licence
and size, or the manual step when mgcl cannot fetch it.

Checksums come from the publisher (Zenodo shows an md5 per file) or from well-known
loaders that verify them on every download (dcase_util, HEAR, mirdata/soundata). Where
no checksum could be confirmed the entry says ``md5=None`` with a comment: the archive
is then only checked for completeness (its size against Content-Length).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mgcl.data import layouts
from mgcl.data.sources import Dataset, Names
from mgcl.errors import ManifestError, MgclError


def filename_from_url(url: str) -> str:
    """The last path segment of ``url`` without query ('.../UrbanSound8K.tar.gz?download=1')."""
    name = urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(url).path).name)
    if not name:
        raise MgclError(f"cannot tell a file name from URL '{url}'")
    return name


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
class Entry:
    """One dataset: what it is, how to read it, where to fetch it.

    ``title``: short (``"ESC-50"``), for error messages and summaries; ``description``: one
    line; ``url``: the homepage; ``aliases``: other names :func:`canonical_name` accepts
    (case and punctuation never matter). ``loader(root, **options)`` reads the official
    layout into a :class:`~mgcl.data.sources.Dataset`.

    Download (:mod:`mgcl.data.download`): ``archives``; ``folder`` (relative to ``--root``)
    is the dataset root the loader reads and ``expect`` lists paths inside it that exist
    once the dataset is complete; ``manual`` (instructions, with ``{dir}`` / ``{root}``
    placeholders) marks a dataset that needs a step mgcl cannot do (a licence click, a
    registration, git-lfs). An entry with neither archives nor a manual step (a manifest,
    folders) has nothing to download.
    """

    name: str
    title: str
    description: str
    loader: Callable[..., Dataset]
    citation: str = ""
    url: str = ""
    aliases: tuple[str, ...] = ()
    archives: tuple[Archive, ...] = ()
    folder: str = ""
    expect: tuple[str, ...] = ()
    licence: str = ""
    size: str = "unknown"
    manual: str | None = None
    notes: str = ""

    @property
    def downloadable(self) -> bool:
        """Whether ``mgcl data download`` knows how to get it (archives or a manual step)."""
        return bool(self.archives or self.manual)

    def parts(self, include_optional: bool = False) -> list[Archive]:
        return [a for a in self.archives if include_optional or not a.optional]

    @property
    def verified(self) -> str:
        """'all' / 'some' / 'none': how many archives carry a recorded checksum."""
        have = [a.checksum is not None for a in self.archives]
        return "all" if have and all(have) else "some" if any(have) else "none"


# --------------------------------------------------------------------------- download details
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
        _zenodo(1040168, f"{ev}.audio.{i}.zip", md5=m, size=s, optional=True) for i, (m, s) in enumerate(ev_audio, 1)
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


# --------------------------------------------------------------------------- the catalog
#: Every dataset, by name, in the order ``mgcl data list`` shows them.
CATALOG: dict[str, Entry] = {}


def register_dataset(entry: Entry) -> Entry:
    """Add (or replace) a catalog entry; returns it."""
    CATALOG[entry.name] = entry
    return entry


_ESC50_DOWNLOAD = {
    "url": "https://github.com/karolpiczak/ESC-50",
    "citation": (
        'K. J. Piczak. "ESC: Dataset for Environmental Sound Classification." Proc. 23rd ACM '
        "International Conference on Multimedia, 2015. doi:10.1145/2733373.2806390"
    ),
    "archives": (
        Archive(
            url="https://github.com/karoldvl/ESC-50/archive/master.zip",
            filename="ESC-50-master.zip",
            # md5 recorded by HEAR 2021 and mirdata/soundata for this URL. It is a GitHub
            # *branch* archive: should the branch ever move, the bytes change; then pass
            # --checksum with the new value (or none) after checking the source yourself.
            md5="7771e4b9d86d0945acce719c7a59305a",
        ),
    ),
    "folder": "ESC-50-master",
    "expect": ("meta/esc50.csv", "audio"),
    "licence": "CC BY-NC 3.0",
    "size": "~0.6 GB",
}

for _entry in (
    Entry(
        name="esc50",
        title=layouts.TITLES["esc50"],
        aliases=("esc",),
        description="ESC-50: 2,000 environmental sounds, 50 classes, 5 official folds",
        loader=layouts.load_esc50,
        **_ESC50_DOWNLOAD,
    ),
    Entry(
        name="esc10",
        title=layouts.TITLES["esc10"],
        description="ESC-10: the 10-class, 400-clip subset of ESC-50 (esc10 column), 5 official folds",
        loader=layouts.load_esc10,
        **_ESC50_DOWNLOAD,
        notes="downloads ESC-50, whose esc10 column marks the subset",
    ),
    Entry(
        name="urbansound8k",
        title=layouts.TITLES["urbansound8k"],
        aliases=("us8k", "urbansound"),
        description="UrbanSound8K: 8,732 urban sound slices, 10 classes, 10 official folds",
        loader=layouts.load_urbansound8k,
        url="https://urbansounddataset.weebly.com/urbansound8k.html",
        citation=(
            'J. Salamon, C. Jacoby, J. P. Bello. "A Dataset and Taxonomy for Urban Sound Research." '
            "Proc. 22nd ACM International Conference on Multimedia, 2014. doi:10.1145/2647868.2655045"
        ),
        archives=(
            # md5 as published on Zenodo record 1203745 (also recorded by soundata, paddlespeech).
            Archive(
                url="https://zenodo.org/records/1203745/files/UrbanSound8K.tar.gz",
                md5="9aa69802bbf37fb986f71ec1483a196e",
            ),
        ),
        folder="UrbanSound8K",
        expect=("metadata/UrbanSound8K.csv", "audio/fold1"),
        licence="CC BY-NC 3.0",
        size="~6 GB",
    ),
    Entry(
        name="fsdkaggle2018",
        title=layouts.TITLES["fsdkaggle2018"],
        aliases=("fsd2018", "fsdk2018", "freesound2018"),
        description="FSDKaggle2018: 11,073 Freesound clips, 41 AudioSet classes, official train/test split "
        "(DCASE 2018 task 2)",
        loader=layouts.load_fsdkaggle2018,
        url="https://zenodo.org/records/2552860",
        citation=(
            'E. Fonseca, M. Plakal, F. Font, D. P. W. Ellis, X. Favory, J. Pons, X. Serra. "General-purpose '
            'Tagging of Freesound Audio with AudioSet Labels: Task Description, Dataset, and Baseline." '
            "Proc. DCASE 2018 Workshop"
        ),
        archives=tuple(
            # UNVERIFIED: Zenodo publishes an md5 per file, but none could be confirmed
            # here, so none is recorded (size is still checked against Content-Length).
            _zenodo(2552860, f"FSDKaggle2018.{part}.zip", into="FSDKaggle2018")
            for part in ("meta", "doc", "audio_test", "audio_train")
        ),
        folder="FSDKaggle2018",
        expect=(
            "FSDKaggle2018.meta/train_post_competition.csv",
            "FSDKaggle2018.audio_train",
            "FSDKaggle2018.audio_test",
        ),
        licence="CC BY 4.0 (each clip keeps its own Freesound licence; see the record)",
        size="~5 GB",
    ),
    Entry(
        name="gtzan",
        title=layouts.TITLES["gtzan"],
        description="GTZAN: 1,000 music clips of 30 s, 10 genres, 10 deterministic folds (no official split)",
        loader=layouts.load_gtzan,
        url="http://marsyas.info/downloads/datasets.html",
        citation=(
            'G. Tzanetakis, P. Cook. "Musical genre classification of audio signals." IEEE Transactions '
            "on Speech and Audio Processing 10(5), 2002"
        ),
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
        size="~1.2 GB",
    ),
    Entry(
        name="vocalsound",
        title=layouts.TITLES["vocalsound"],
        description="VocalSound: 21,024 laughs, sighs, coughs, throat clearings, sneezes, sniffs; "
        "official speaker split",
        loader=layouts.load_vocalsound,
        url="https://github.com/YuanGongND/vocalsound",
        citation=(
            'Y. Gong, J. Yu, J. Glass. "VocalSound: A Dataset for Improving Human Vocal Sounds '
            'Recognition." Proc. ICASSP 2022. doi:10.1109/ICASSP43922.2022.9746828'
        ),
        archives=(
            # The authors' 16 kHz release link. UNVERIFIED: no checksum is published.
            Archive(
                url="https://www.dropbox.com/s/c5ace70qh1vbyzb/vs_release_16k.zip?dl=1",
                filename="vs_release_16k.zip",
                into="vocalsound",
            ),
        ),
        folder="vocalsound",
        expect=("audio_16k", "meta"),
        licence="CC BY-SA 4.0",
    ),
    Entry(
        name="nsynth",
        title=layouts.TITLES["nsynth"],
        description="NSynth: musical notes, 11 instrument families, official train/valid/test split",
        loader=layouts.load_nsynth,
        url="https://magenta.tensorflow.org/datasets/nsynth",
        citation=(
            'J. Engel, C. Resnick, A. Roberts, S. Dieleman, D. Eck, K. Simonyan, M. Norouzi. "Neural Audio '
            'Synthesis of Musical Notes with WaveNet Autoencoders." Proc. ICML 2017'
        ),
        archives=(
            # md5: recorded by the HEAR 2021 benchmark, which verifies them on download.
            Archive(
                url=f"{_NSYNTH}/nsynth-valid.jsonwav.tar.gz",
                mirrors=(f"{_NSYNTH_OLD}/nsynth-valid.jsonwav.tar.gz",),
                md5="87e94a00a19b6dbc99cf6d4c0c0cae87",
                size=1068767009,
                into="nsynth",
            ),
            Archive(
                url=f"{_NSYNTH}/nsynth-test.jsonwav.tar.gz",
                mirrors=(f"{_NSYNTH_OLD}/nsynth-test.jsonwav.tar.gz",),
                md5="5e6f8719bf7e16ad0a00d518b78af77d",
                into="nsynth",
            ),
            Archive(
                url=f"{_NSYNTH}/nsynth-train.jsonwav.tar.gz",
                mirrors=(f"{_NSYNTH_OLD}/nsynth-train.jsonwav.tar.gz",),
                md5="fde6665a93865503ba598b9fac388660",
                into="nsynth",
                optional=True,
                note="the training split, ~22 GB",
            ),
        ),
        folder="nsynth",
        expect=("nsynth-valid/examples.json", "nsynth-test/examples.json"),
        licence="CC BY 4.0",
        size="~1.5 GB (+ ~22 GB for the optional train split)",
        notes="instrument family classification uses valid/test; the train split is optional",
    ),
    Entry(
        name="tut2017",
        title=layouts.TITLES["tut2017"],
        aliases=("tut", "tutacousticscenes2017", "tutasc2017", "dcase2017"),
        description="TUT Acoustic Scenes 2017 (development; DCASE 2017 task 1): 4,680 segments of 10 s, "
        "15 scenes, 4 official folds",
        loader=layouts.load_tut2017,
        url="https://zenodo.org/records/400515",
        citation=(
            "A. Mesaros, T. Heittola, A. Diment, B. Elizalde, A. Shah, E. Vincent, B. Raj, T. Virtanen. "
            '"DCASE 2017 Challenge Setup: Tasks, Datasets and Baseline System." Proc. DCASE 2017 Workshop'
        ),
        archives=_tut2017_parts(),
        folder="TUT-acoustic-scenes-2017-development",
        expect=("meta.txt", "evaluation_setup", "audio"),
        licence="free for non-commercial research (Tampere University licence, see the records)",
        size="~10.7 GB (+ ~3.6 GB for the optional evaluation set)",
        notes="the optional evaluation set unpacks beside it, into TUT-acoustic-scenes-2017-evaluation",
    ),
    Entry(
        name="beijing_opera",
        title=layouts.TITLES["beijing_opera"],
        aliases=("beijingoperapercussion",),
        description="Beijing Opera Percussion: 236 strokes of 4 instruments, 5 deterministic folds",
        loader=layouts.load_beijing_opera,
        url="https://zenodo.org/records/1285212",
        citation=(
            'M. Tian, A. Srinivasamurthy, M. Sandler, X. Serra. "A study of instrument-wise onset detection '
            'in Beijing Opera percussion ensembles." Proc. ICASSP 2014. Dataset: Beijing Opera Percussion '
            "Instrument Dataset (1.0), Zenodo, doi:10.5281/zenodo.1285212"
        ),
        archives=(
            # md5 recorded by the HEAR 2021 benchmark (verified on download).
            # Unpacked into ROOT/beijing_opera whatever its inner folders; the loader finds the
            # class folders (bangu, daluo, naobo, xiaoluo) up to two levels below.
            _zenodo(
                1285212,
                "beijing_opera_percussion_instrument_1.0.zip",
                md5="51dc70d02a06b9d96befadf320a6996f",
                into="beijing_opera",
            ),
        ),
        folder="beijing_opera",
        licence="see the Zenodo record (research use)",
    ),
    Entry(
        name="crema_d",
        title=layouts.TITLES["crema_d"],
        description="CREMA-D: 7,442 acted sentences of 91 actors, 6 emotions, 5 speaker-independent folds",
        loader=layouts.load_crema_d,
        url="https://github.com/CheyneyComputerScience/CREMA-D",
        citation=(
            'H. Cao, D. G. Cooper, M. K. Keutmann, R. C. Gur, A. Nenkova, R. Verma. "CREMA-D: Crowd-sourced '
            'Emotional Multimodal Actors Dataset." IEEE Transactions on Affective Computing 5(4), 2014'
        ),
        folder="CREMA-D",
        expect=("AudioWAV",),
        licence="Open Database License (ODbL) 1.0; contents under the Database Contents License 1.0",
        manual=_CREMA_D_STEPS,
    ),
    Entry(
        name="ravdess",
        title=layouts.TITLES["ravdess"],
        description="RAVDESS speech: 1,440 acted utterances of 24 actors, 8 emotions, 4 speaker-independent "
        "folds (song optional)",
        loader=layouts.load_ravdess,
        url="https://zenodo.org/records/1188976",
        citation=(
            'S. R. Livingstone, F. A. Russo. "The Ryerson Audio-Visual Database of Emotional Speech and Song '
            '(RAVDESS)." PLoS ONE 13(5): e0196391, 2018. doi:10.1371/journal.pone.0196391'
        ),
        archives=(
            # md5 and sizes as published on Zenodo record 1188976 (confirmed by several loaders).
            _zenodo(
                1188976,
                "Audio_Speech_Actors_01-24.zip",
                md5="bc696df654c87fed845eb13823edef8a",
                size=208468073,
                into="ravdess",
            ),
            _zenodo(
                1188976,
                "Audio_Song_Actors_01-24.zip",
                md5="5411230427d67a21e18aa4d466e6d1b9",
                size=225505317,
                into="ravdess",
                optional=True,
                note="the sung recordings",
            ),
        ),
        folder="ravdess",
        expect=("Actor_01",),
        licence="CC BY-NC-SA 4.0",
        size="~0.2 GB (+ ~0.2 GB for the optional song part)",
    ),
    Entry(
        name="sesa",
        title=layouts.TITLES["sesa"],
        description="SESA: surveillance sound events (casual, gunshot, explosion, alarm), official train/test split",
        loader=layouts.load_sesa,
        url="https://zenodo.org/records/3519845",
        citation=(
            "T. Spadini. Sound Events for Surveillance Applications (SESA). Zenodo, 2019. doi:10.5281/zenodo.3519845"
        ),
        archives=(
            # UNVERIFIED: Zenodo shows an md5, but none could be confirmed here.
            # Unpacked into ROOT/sesa; train/ and test/ are found there or one folder below.
            _zenodo(3519845, "SESA.zip", into="sesa"),
        ),
        folder="sesa",
        expect=("train", "test"),
        licence="CC BY 4.0 (per the Zenodo record)",
    ),
    Entry(
        name="manifest",
        title=layouts.TITLES["manifest"],
        aliases=("csv",),
        description="a manifest CSV (path,label[,fold][,split]); root = the CSV or its folder",
        loader=layouts.load_manifest,
    ),
    Entry(
        name="folders",
        title=layouts.TITLES["folders"],
        aliases=("folder",),
        description="folder per class: every sub-folder of the root is a class (n_folds= optional)",
        loader=layouts.load_folders,
    ),
):
    register_dataset(_entry)
del _entry


# --------------------------------------------------------------------------- look-ups
def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def canonical_name(name: str) -> str | None:
    """The catalog name of ``name`` (case and punctuation ignored: 'ESC-50' -> 'esc50';
    aliases: 'us8k' -> 'urbansound8k'), or None when no entry has that name."""
    key = _key(name)
    for entry in CATALOG.values():
        if key == _key(entry.name) or key in map(_key, entry.aliases):
            return entry.name
    return None


def get_entry(name: str) -> Entry:
    """The entry of ``name`` (see :func:`canonical_name`); ManifestError when unknown."""
    canonical = canonical_name(name)
    if canonical is None:
        raise ManifestError(f"unknown dataset '{name}' (choose from: {', '.join(CATALOG)})")
    return CATALOG[canonical]


def available_datasets() -> dict[str, str]:
    """Dataset name -> one-line description, in catalog order."""
    return {name: entry.description for name, entry in CATALOG.items()}


def load_dataset(
    name: str, root: str | os.PathLike, names: Mapping[str, str] | str | os.PathLike | None = None, **options
) -> Dataset:
    """Load dataset ``name`` (see :func:`available_datasets`; case and punctuation are
    ignored: ``ESC-50``, ``esc50``) from ``root`` with its entry's loader. ``names``
    overrides class display names (a mapping label -> name, or a JSON file holding one);
    ``options`` go to the loader (e.g. ``n_folds=`` for folder layouts, ``verified_only=``
    for FSDKaggle2018)."""
    entry = get_entry(name)
    accepted = [p for p in inspect.signature(entry.loader).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ManifestError(
            f"{entry.title}: unknown option(s) {', '.join(unknown)} (accepted: {', '.join(accepted) or 'none'})"
        )
    ds = entry.loader(root, **options)
    return dataclasses.replace(ds, title=entry.title, citation=entry.citation, url=entry.url).with_names(names)


def known_datasets() -> list[str]:
    """Names of the dataset layouts mgcl reads."""
    return list(available_datasets())


def from_layout(name: str, root: str | Path | None, names: Names | None = None) -> Dataset:
    """Dataset ``name`` in its official layout under ``root``
    (:func:`load_dataset`), named ``name`` as given; ``names``: a JSON
    file (or a mapping) overriding the readable class names."""
    if canonical_name(name) is None:
        raise MgclError(
            f"unknown dataset '{name}' (choose from: {', '.join(available_datasets())}; "
            f"or give a manifest with --manifest {name}=CSV)"
        )
    if root is None:
        raise MgclError(
            f"dataset '{name}' needs --root DIR, the folder of its official layout "
            f"(`mgcl data download {name} --root DIR` fetches it)"
        )
    root = Path(root).expanduser()
    if not root.exists():
        raise MgclError(f"--root {root}: folder not found (dataset '{name}')")
    return dataclasses.replace(load_dataset(name, root, names), name=name, origin=str(root))
