"""Dataset loaders on small on-disk replicas of each official layout (synthetic sine audio,
the official file and column names)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mgcl.data.catalog import available_datasets, load_dataset
from mgcl.data.manifest import Row, read_manifest
from mgcl.data.sources import Dataset, load_names
from mgcl.errors import ManifestError

SR = 8000


def wav(path: Path, freq: float = 440.0, fmt: str | None = None) -> Path:
    """A 20 ms sine written with soundfile (format from the suffix unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(0.02 * SR)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, format=fmt)
    return path


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def fold_counts(ds: Dataset) -> dict[str, Counter]:
    """fold -> Counter of labels."""
    out: dict[str, Counter] = {}
    for r in ds.rows:
        out.setdefault(r.fold, Counter())[r.label] += 1
    return out


def assert_paths_ok(ds: Dataset) -> None:
    assert ds.rows
    for r in ds.rows:
        assert r.path.is_absolute(), r.path
        assert r.path.is_file(), r.path
    assert len(ds.groups) == len(ds.rows)
    assert ds.classes == sorted({r.label for r in ds.rows})
    assert set(ds.display_names) == set(ds.classes)


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------- replicas


ESC_CATS = [(0, "dog", True), (9, "crow", False), (14, "chirping_birds", False)]


def make_esc50(root: Path) -> Path:
    rows = []
    for fold in range(1, 6):
        for target, cat, esc10 in ESC_CATS:
            src = f"{100000 + fold * 10 + target}"
            name = f"{fold}-{src}-A-{target}.wav"
            wav(root / "audio" / name, 200 + 50 * target)
            rows.append([name, fold, target, cat, str(esc10), src, "A"])
    write_csv(
        root / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"], rows
    )
    return root


US8K_CLASSES = [(0, "air_conditioner"), (6, "gun_shot")]


def make_us8k(root: Path) -> Path:
    rows = []
    for fold in range(1, 11):
        for class_id, cls in US8K_CLASSES:
            fs_id = 1000 + fold
            name = f"{fs_id}-{class_id}-0-0.wav"
            wav(root / "audio" / f"fold{fold}" / name)
            rows.append([name, fs_id, 0.0, 0.02, 1, fold, class_id, cls])
    write_csv(
        root / "metadata" / "UrbanSound8K.csv",
        ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"],
        rows,
    )
    return root


def make_fsd(root: Path) -> Path:
    train = [
        ["00044347.wav", "Hi-hat", 0, 28739, "Attribution"],
        ["001ca53d.wav", "Saxophone", 1, 358827, "Attribution"],
        ["002d256b.wav", "Bass_drum", 1, 10897, "Creative Commons 0"],
    ]
    test = [
        ["00063640.wav", "Bass_drum", "Public", 353960, "Attribution"],
        ["0013a1db.wav", "Saxophone", "Private", 103436, "Creative Commons 0"],
    ]
    for r in train:
        wav(root / "FSDKaggle2018.audio_train" / r[0])
    for r in test:
        wav(root / "FSDKaggle2018.audio_test" / r[0])
    wav(root / "FSDKaggle2018.audio_test" / "ffffffff.wav")  # unscored padding clip
    meta = root / "FSDKaggle2018.meta"
    write_csv(
        meta / "train_post_competition.csv", ["fname", "label", "manually_verified", "freesound_id", "license"], train
    )
    write_csv(
        meta / "test_post_competition_scoring_clips.csv", ["fname", "label", "usage", "freesound_id", "license"], test
    )
    return root


GTZAN_INDICES = [0, 9, 10, 55, 99]  # -> folds 1, 1, 2, 6, 10


def make_gtzan(root: Path, folder="genres_original", ext="wav", fmt=None) -> Path:
    for genre in ("blues", "hiphop"):
        for i in GTZAN_INDICES:
            wav(root / folder / genre / f"{genre}.{i:05d}.{ext}", fmt=fmt)
    return root


VS_SPEAKERS = {"train": ["f0001", "m0002"], "valid": ["f0003"], "test": ["m0004"]}
VS_LABELS = ["laughter", "throatclearing", "cough"]


def make_vocalsound(root: Path, meta: str = "csv") -> Path:
    audio = root / "audio_16k"
    files = {s: [] for s in VS_SPEAKERS}
    for split, speakers in VS_SPEAKERS.items():
        for spk in speakers:
            for i, label in enumerate(VS_LABELS):
                files[split].append(wav(audio / f"{spk}_{i}_{label}.wav").name)
    short = {"train": "tr", "valid": "val", "test": "te"}
    for split, speakers in VS_SPEAKERS.items():
        if meta == "csv":  # official: no header, speaker id first
            p = root / "meta" / f"{short[split]}_meta.csv"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("".join(f"{s},F,25,USA,English\n" for s in speakers))
        else:
            p = root / "datafiles" / f"{short[split]}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(
                json.dumps({"data": [{"wav": f"/somewhere/audio_16k/{f}", "labels": "/m/x"} for f in files[split]]})
            )
    return root


NSYNTH = {
    "train": [
        ("bass_synthetic_033-022-050", "bass", "bass_synthetic_033"),
        ("synth_lead_synthetic_000-060-075", "synth_lead", "synth_lead_synthetic_000"),
        ("guitar_acoustic_010-040-100", "guitar", "guitar_acoustic_010"),
    ],
    "valid": [("bass_electronic_018-022-100", "bass", "bass_electronic_018")],
    "test": [
        ("guitar_acoustic_030-050-025", "guitar", "guitar_acoustic_030"),
        ("bass_synthetic_068-049-025", "bass", "bass_synthetic_068"),
    ],
}


def make_nsynth(root: Path, splits=("train", "valid", "test")) -> Path:
    families = [
        "bass",
        "brass",
        "flute",
        "guitar",
        "keyboard",
        "mallet",
        "organ",
        "reed",
        "string",
        "synth_lead",
        "vocal",
    ]
    for split in splits:
        examples = {}
        for note_str, family, instrument in NSYNTH[split]:
            wav(root / f"nsynth-{split}" / "audio" / f"{note_str}.wav")
            pitch = int(note_str.split("-")[1])
            examples[note_str] = {
                "note": 1,
                "note_str": note_str,
                "instrument": 7,
                "instrument_str": instrument,
                "pitch": pitch,
                "velocity": 100,
                "sample_rate": 16000,
                "qualities": [0] * 10,
                "qualities_str": [],
                "instrument_family": families.index(family),
                "instrument_family_str": family,
                "instrument_source": 2,
                "instrument_source_str": "synthetic",
            }
        (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps(examples))
    return root


TUT_SCENES = ["beach", "cafe/restaurant"]


def make_tut(root: Path) -> Path:
    dev = root / "TUT-acoustic-scenes-2017-development"
    meta, evaluate = [], {k: [] for k in range(1, 5)}
    for s, scene in enumerate(TUT_SCENES):
        for k in range(1, 5):  # one recording location per fold and scene
            ident = f"{'ab'[s]}{k:03d}"
            for seg in (0, 10):
                rel = f"audio/{ident}_{seg}_{seg + 10}.wav"
                wav(dev / rel)
                meta.append(f"{rel}\t{scene}\t{ident}")
                evaluate[k].append(f"{rel}\t{scene}")
    (dev / "meta.txt").write_text("\n".join(meta) + "\n")
    setup = dev / "evaluation_setup"
    setup.mkdir()
    for k in range(1, 5):
        (setup / f"fold{k}_evaluate.txt").write_text("\n".join(evaluate[k]) + "\n")
        (setup / f"fold{k}_test.txt").write_text("\n".join(e.split("\t")[0] for e in evaluate[k]))
        train = [e for j in range(1, 5) if j != k for e in evaluate[j]]
        (setup / f"fold{k}_train.txt").write_text("\n".join(train) + "\n")
    return root


BO_CLASSES = ["bangu", "daluo", "naobo", "xiaoluo"]


def make_beijing(root: Path, n: int = 10) -> Path:
    for c in BO_CLASSES:
        for i in range(1, n + 1):
            wav(root / "BeijingOpera" / c / f"{c}_{i}.wav")
    return root


CREMA_ACTORS = [f"{1001 + i}" for i in range(10)]
CREMA_CODES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]


def make_crema(root: Path) -> Path:
    for a in CREMA_ACTORS:
        for code in CREMA_CODES[:3] if int(a) % 2 else CREMA_CODES:
            wav(root / "AudioWAV" / f"{a}_DFA_{code}_XX.wav")
    return root


def make_ravdess(root: Path, n_actors: int = 8) -> Path:
    for a in range(1, n_actors + 1):
        d = root / f"Actor_{a:02d}"
        for emo in ("01", "05", "08"):
            wav(d / f"03-01-{emo}-01-01-01-{a:02d}.wav")
        wav(d / f"03-02-03-01-01-01-{a:02d}.wav")  # song: excluded
        wav(d / f"01-01-03-01-01-01-{a:02d}.wav")  # audio-video modality: excluded
    return root


SESA_COUNTS = {
    "train": {"casual": 3, "gunshot": 2, "explosion": 2, "alarm": 2},
    "test": {"casual": 1, "gunshot": 1, "explosion": 1, "alarm": 1},
}


def make_sesa(root: Path) -> Path:
    for split, counts in SESA_COUNTS.items():
        for cls, n in counts.items():
            for i in range(n):
                wav(root / split / f"{cls}_{i:03d}.wav")
    return root


# ----------------------------------------------------------------------------- loaders


def test_esc50_official_layout(tmp_path):
    root = make_esc50(tmp_path / "ESC-50-master")
    ds = load_dataset("esc50", root)
    assert_paths_ok(ds)
    assert len(ds) == 15 and ds.classes == ["chirping_birds", "crow", "dog"]
    assert ds.protocol == "folds" and ds.fold_ids == ("1", "2", "3", "4", "5")
    for fold, counts in fold_counts(ds).items():
        assert counts == Counter({"dog": 1, "crow": 1, "chirping_birds": 1}), fold
        for r in ds.rows:
            if r.fold == fold:
                assert r.path.name.startswith(f"{fold}-")  # ESC-50 names start with the fold
    assert ds.display_names["chirping_birds"] == "chirping birds"
    assert ds.rows[0].path == (root / "audio" / "1-100010-A-0.wav").resolve()
    assert ds.groups[0] == "100010"
    assert all(r.split is None for r in ds.rows)
    # the parent of the distributed top folder works too
    assert [r.path for r in load_dataset("ESC-50", tmp_path).rows] == [r.path for r in ds.rows]


def test_esc10_subset(tmp_path):
    ds = load_dataset("esc10", make_esc50(tmp_path))
    assert ds.classes == ["dog"] and len(ds) == 5
    assert ds.fold_ids == ("1", "2", "3", "4", "5")


def test_urbansound8k_official_layout(tmp_path):
    root = make_us8k(tmp_path / "UrbanSound8K")
    ds = load_dataset("urbansound8k", tmp_path)
    assert_paths_ok(ds)
    assert len(ds) == 20 and ds.classes == ["air_conditioner", "gun_shot"]
    assert ds.fold_ids == tuple(str(k) for k in range(1, 11))  # numeric, not lexical, order
    for counts in fold_counts(ds).values():
        assert counts == Counter({"air_conditioner": 1, "gun_shot": 1})
    for r, g in zip(ds.rows, ds.groups):
        assert r.path.parent.name == f"fold{r.fold}"
        assert g == str(1000 + int(r.fold))
    assert ds.display_names == {"air_conditioner": "air conditioner", "gun_shot": "gun shot"}
    assert ds.root == root.resolve()


def test_fsdkaggle2018_fixed_split(tmp_path):
    ds = load_dataset("fsdkaggle2018", make_fsd(tmp_path))
    assert_paths_ok(ds)
    assert ds.protocol == "split" and ds.split_ids == ("train", "test")
    train = [ds.rows[i] for i in ds.select(split="train")]
    test = [ds.rows[i] for i in ds.select(split="test")]
    assert [r.label for r in train] == ["Hi-hat", "Saxophone", "Bass_drum"]
    assert all(r.path.parent.name == "FSDKaggle2018.audio_train" for r in train)
    assert sorted(r.path.name for r in test) == ["00063640.wav", "0013a1db.wav"]  # no padding clip
    assert ds.display_names["Bass_drum"] == "bass drum"
    assert ds.display_names["Hi-hat"] == "hi-hat"
    verified = load_dataset("fsdkaggle2018", tmp_path, verified_only=True)
    assert [r.label for r in verified.rows if r.split == "train"] == ["Saxophone", "Bass_drum"]
    assert len(verified.select(split="test")) == 2


@pytest.mark.parametrize("layout", ["kaggle", "original"])
def test_gtzan_layouts_and_folds(tmp_path, layout):
    if layout == "kaggle":
        make_gtzan(tmp_path / "Data")
        ext = ".wav"
    else:
        if "AU" not in sf.available_formats():
            pytest.skip("libsndfile here cannot write .au")
        make_gtzan(tmp_path, folder="genres", ext="au", fmt="AU")
        ext = ".au"
    ds = load_dataset("gtzan", tmp_path)
    assert_paths_ok(ds)
    assert all(r.path.suffix == ext for r in ds.rows)
    assert ds.classes == ["blues", "hiphop"] and len(ds) == 10
    assert ds.display_names == {"blues": "blues", "hiphop": "hip hop"}
    fold_of = {r.path.name: r.fold for r in ds.rows}
    for genre in ("blues", "hiphop"):
        assert [fold_of[f"{genre}.{i:05d}{ext}"] for i in GTZAN_INDICES] == ["1", "1", "2", "6", "10"]
    assert ds.fold_ids == ("1", "2", "6", "10")


def test_gtzan_root_is_the_genres_folder(tmp_path):
    make_gtzan(tmp_path / "gtzan", folder="genres")
    ds = load_dataset("gtzan", tmp_path / "gtzan" / "genres")
    assert_paths_ok(ds)
    assert len(ds) == 10 and ds.classes == ["blues", "hiphop"]
    assert [r.path for r in load_dataset("gtzan", tmp_path / "gtzan").rows] == [r.path for r in ds.rows]


@pytest.mark.parametrize("meta", ["csv", "json"])
def test_vocalsound_speaker_split(tmp_path, meta):
    ds = load_dataset("vocalsound", make_vocalsound(tmp_path / "vs_release_16k", meta))
    assert_paths_ok(ds)
    assert ds.protocol == "split" and ds.split_ids == ("train", "valid", "test")
    assert ds.classes == ["cough", "laughter", "throatclearing"]
    assert ds.display_names["throatclearing"] == "throat clearing"
    for split, speakers in VS_SPEAKERS.items():
        idx = ds.select(split=split)
        assert len(idx) == len(speakers) * len(VS_LABELS)
        assert {ds.groups[i] for i in idx} == set(speakers)
    for r in ds.rows:
        assert r.path.stem.endswith(r.label)


def test_vocalsound_without_split_files(tmp_path):
    root = make_vocalsound(tmp_path)
    for p in (root / "meta").iterdir():
        p.unlink()
    with pytest.raises(ManifestError) as e:
        load_dataset("vocalsound", root)
    assert "meta/tr_meta.csv" in one_line_error(e)


def test_nsynth_instrument_family(tmp_path):
    ds = load_dataset("nsynth", make_nsynth(tmp_path))
    assert_paths_ok(ds)
    assert ds.protocol == "split" and ds.split_ids == ("train", "valid", "test")
    assert ds.classes == ["bass", "guitar", "synth_lead"]
    assert ds.display_names["synth_lead"] == "synth lead"
    for split, notes in NSYNTH.items():
        got = {(ds.rows[i].path.stem, ds.rows[i].label, ds.groups[i]) for i in ds.select(split=split)}
        assert got == set(notes)
        assert all(ds.rows[i].path.parent.parent.name == f"nsynth-{split}" for i in ds.select(split=split))
    only_test = load_dataset("nsynth", tmp_path, splits=("test",))
    assert only_test.split_ids == ("test",) and len(only_test) == 2


def test_nsynth_partial_download(tmp_path):
    ds = load_dataset("nsynth", make_nsynth(tmp_path, splits=("valid", "test")))
    assert ds.split_ids == ("valid", "test") and len(ds) == 3


def test_tut2017_folds_from_evaluate_lists(tmp_path):
    ds = load_dataset("tut2017", make_tut(tmp_path))
    assert_paths_ok(ds)
    assert len(ds) == 16 and ds.fold_ids == ("1", "2", "3", "4")
    assert ds.classes == ["beach", "cafe/restaurant"]
    assert ds.display_names["cafe/restaurant"] == "cafe or restaurant"
    for counts in fold_counts(ds).values():
        assert counts == Counter({"beach": 2, "cafe/restaurant": 2})
    for r, g in zip(ds.rows, ds.groups):  # each location sits in exactly the fold it was evaluated in
        assert r.path.name.startswith(g) and g.endswith(r.fold)
    # rows = the evaluate lists, fold by fold
    setup = tmp_path / "TUT-acoustic-scenes-2017-development" / "evaluation_setup"
    for k in range(1, 5):
        listed = {line.split("\t")[0] for line in (setup / f"fold{k}_evaluate.txt").read_text().split("\n") if line}
        assert {f"audio/{ds.rows[i].path.name}" for i in ds.select(fold=str(k))} == listed


def test_tut2017_missing_evaluation_setup(tmp_path):
    make_tut(tmp_path)
    (tmp_path / "TUT-acoustic-scenes-2017-development" / "evaluation_setup" / "fold3_evaluate.txt").unlink()
    with pytest.raises(ManifestError) as e:
        load_dataset("tut2017", tmp_path)
    assert "evaluation_setup/fold3_evaluate.txt not found" in one_line_error(e)


def test_beijing_opera_deterministic_folds(tmp_path):
    ds = load_dataset("beijing_opera", make_beijing(tmp_path))
    assert_paths_ok(ds)
    assert ds.classes == BO_CLASSES and len(ds) == 40
    assert ds.fold_ids == ("1", "2", "3", "4", "5")
    for counts in fold_counts(ds).values():
        assert counts == Counter(dict.fromkeys(BO_CLASSES, 2))
    fold_of = {r.path.name: r.fold for r in ds.rows}
    # natural order: bangu_1, bangu_2 -> fold 1; bangu_9, bangu_10 -> fold 5
    assert [fold_of[f"bangu_{i}.wav"] for i in (1, 2, 3, 9, 10)] == ["1", "1", "2", "5", "5"]
    assert ds.display_names["naobo"] == "naobo cymbals"
    assert [r.path for r in load_dataset("beijing_opera", tmp_path).rows] == [r.path for r in ds.rows]


def test_crema_d_actor_folds(tmp_path):
    ds = load_dataset("CREMA-D", make_crema(tmp_path))
    assert_paths_ok(ds)
    assert ds.classes == sorted(CREMA_CODES)
    assert ds.display_names == {
        "ANG": "anger",
        "DIS": "disgust",
        "FEA": "fear",
        "HAP": "happy",
        "NEU": "neutral",
        "SAD": "sad",
    }
    assert len(ds) == 5 * 3 + 5 * 6
    assert ds.fold_ids == ("1", "2", "3", "4", "5")
    actor_fold = {}
    for r, actor in zip(ds.rows, ds.groups):
        assert r.path.name.startswith(actor + "_")
        assert actor_fold.setdefault(actor, r.fold) == r.fold  # an actor never spans folds
    assert actor_fold == {a: str(i // 2 + 1) for i, a in enumerate(CREMA_ACTORS)}


def test_ravdess_speech_only_actor_folds(tmp_path):
    ds = load_dataset("ravdess", make_ravdess(tmp_path / "Audio_Speech_Actors_01-24"))
    assert_paths_ok(ds)
    assert len(ds) == 8 * 3  # song and audio-video files left out
    assert all(r.path.name.startswith("03-01-") for r in ds.rows)
    assert ds.classes == ["angry", "neutral", "surprised"]
    assert ds.fold_ids == ("1", "2", "3", "4")
    for r, actor in zip(ds.rows, ds.groups):
        assert r.path.stem.endswith(actor) and r.path.parent.name == f"Actor_{actor}"
        assert r.fold == str((int(actor) - 1) // 2 + 1)
    for counts in fold_counts(ds).values():
        assert counts == Counter({"neutral": 2, "angry": 2, "surprised": 2})


def test_ravdess_24_actors_make_gender_balanced_folds(tmp_path):
    ds = load_dataset("ravdess", make_ravdess(tmp_path, n_actors=24))
    actors = {}
    for r, a in zip(ds.rows, ds.groups):
        actors.setdefault(r.fold, set()).add(int(a))
    assert actors == {str(k + 1): set(range(6 * k + 1, 6 * k + 7)) for k in range(4)}
    for members in actors.values():  # odd ids are male, even female
        assert sum(a % 2 for a in members) == 3


def test_sesa_fixed_split(tmp_path):
    ds = load_dataset("sesa", make_sesa(tmp_path))
    assert_paths_ok(ds)
    assert ds.classes == ["alarm", "casual", "explosion", "gunshot"]
    for split, counts in SESA_COUNTS.items():
        got = Counter(ds.rows[i].label for i in ds.select(split=split))
        assert got == Counter(counts)
    assert ds.partitions()[0][0] == "test"
    assert len(ds.partitions()[0][1]) == 9 and len(ds.partitions()[0][2]) == 4


def test_manifest_loader(tmp_path):
    for i in range(4):
        wav(tmp_path / "clips" / f"{i}.wav")
    write_csv(
        tmp_path / "manifest.csv",
        ["path", "label", "fold"],
        [
            [f"clips/{i}.wav", label, f]
            for i, (label, f) in enumerate([("dog_bark", 1), ("siren", 1), ("dog_bark", 2), ("siren", 2)])
        ],
    )
    for root in (tmp_path, tmp_path / "manifest.csv"):
        ds = load_dataset("manifest", root)
        assert_paths_ok(ds)
        assert ds.protocol == "folds" and ds.fold_ids == ("1", "2")
        assert ds.display_names["dog_bark"] == "dog bark"
        assert [r.path for r in ds.rows] == [(tmp_path / "clips" / f"{i}.wav") for i in range(4)]


def test_folders_layout(tmp_path):
    for c in ("Dog", "car_horn"):
        for i in range(4):
            wav(tmp_path / c / ("sub" if i == 3 else "") / f"{i}.wav")
    (tmp_path / "car_horn" / "notes.txt").write_text("not audio")
    (tmp_path / "empty").mkdir()
    ds = load_dataset("folders", tmp_path)
    assert_paths_ok(ds)
    assert ds.classes == ["Dog", "car_horn"] and len(ds) == 8 and ds.protocol == "random"
    assert ds.display_names == {"Dog": "dog", "car_horn": "car horn"}
    assert ds.partitions() == []
    ds2 = load_dataset("folders", tmp_path, n_folds=2)
    assert ds2.fold_ids == ("1", "2")
    assert all(c == Counter({"Dog": 2, "car_horn": 2}) for c in fold_counts(ds2).values())


# ----------------------------------------------------------------------------- names, helpers


def test_name_overrides_dict_and_json(tmp_path):
    make_us8k(tmp_path)
    ds = load_dataset("urbansound8k", tmp_path, names={"gun_shot": "gunfire"})
    assert ds.display_names == {"air_conditioner": "air conditioner", "gun_shot": "gunfire"}
    p = tmp_path / "names.json"
    p.write_text(json.dumps({"air_conditioner": "an air conditioner humming"}))
    ds = load_dataset("urbansound8k", tmp_path, names=p)
    assert ds.display_names["air_conditioner"] == "an air conditioner humming"
    assert ds.display_names["gun_shot"] == "gun shot"
    assert load_names(str(p)) == {"air_conditioner": "an air conditioner humming"}


def test_name_override_errors(tmp_path):
    make_us8k(tmp_path)
    with pytest.raises(ManifestError) as e:
        load_dataset("urbansound8k", tmp_path, names={"gunshot": "gunfire"})
    assert "gunshot" in one_line_error(e)
    bad = tmp_path / "names.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ManifestError) as e:
        load_dataset("urbansound8k", tmp_path, names=bad)
    assert "JSON object" in one_line_error(e)
    with pytest.raises(ManifestError) as e:
        load_dataset("urbansound8k", tmp_path, names=tmp_path / "absent.json")
    assert "not found" in one_line_error(e)


def test_partitions_cover_folds_without_overlap(tmp_path):
    ds = load_dataset("esc50", make_esc50(tmp_path))
    parts = ds.partitions()
    assert [p[0] for p in parts] == list(ds.fold_ids)
    seen = []
    for fold, train, test in parts:
        assert not set(train) & set(test)
        assert sorted(train + test) == list(range(len(ds)))
        assert {ds.rows[i].fold for i in test} == {fold}
        seen.extend(test)
    assert sorted(seen) == list(range(len(ds)))


def test_write_manifest_round_trip(tmp_path):
    ds = load_dataset("tut2017", make_tut(tmp_path / "tut"))
    out = ds.write_manifest(tmp_path / "out" / "manifest.csv")
    rows = read_manifest(out)
    assert [(r.path.resolve(), r.label, r.fold) for r in rows] == [(r.path, r.label, r.fold) for r in ds.to_rows()]
    assert all(isinstance(r, Row) for r in ds.to_rows())
    again = load_dataset("manifest", out)
    assert again.fold_ids == ds.fold_ids and again.classes == ds.classes


def test_available_datasets_and_dispatch():
    names = available_datasets()
    expected = {
        "esc50",
        "esc10",
        "urbansound8k",
        "fsdkaggle2018",
        "gtzan",
        "vocalsound",
        "nsynth",
        "tut2017",
        "beijing_opera",
        "crema_d",
        "ravdess",
        "sesa",
        "manifest",
        "folders",
    }
    assert set(names) == expected
    assert all(isinstance(d, str) and d and "\n" not in d for d in names.values())
    with pytest.raises(ManifestError) as e:
        load_dataset("esc-51", "/nonexistent")
    assert "unknown dataset 'esc-51'" in one_line_error(e)


def test_unknown_loader_option(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_dataset("esc50", make_esc50(tmp_path), n_folds=3)
    assert "n_folds" in one_line_error(e)


def test_summary_line(tmp_path):
    s = load_dataset("sesa", make_sesa(tmp_path)).summary()
    assert s.startswith("SESA: 13 clips, 4 classes, split train 9 / test 4")


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, expected",
    [
        ("esc50", "meta/esc50.csv not found"),
        ("esc10", "meta/esc50.csv not found"),
        ("urbansound8k", "metadata/UrbanSound8K.csv not found"),
        ("fsdkaggle2018", "FSDKaggle2018.meta/train_post_competition.csv not found"),
        ("gtzan", "genres_original/ (Kaggle) or genres/ (original) not found"),
        ("vocalsound", "audio_16k/ not found"),
        ("nsynth", "nsynth-train/examples.json or nsynth-valid/examples.json or nsynth-test/examples.json not found"),
        ("tut2017", "TUT-acoustic-scenes-2017-development/meta.txt not found"),
        ("beijing_opera", "class folders bangu, daluo, naobo, xiaoluo not found"),
        ("crema_d", "AudioWAV/ not found"),
        ("ravdess", "Actor_NN/ folders not found"),
        ("sesa", "train/ and test/ not found"),
        ("manifest", "manifest not found"),
        ("folders", "no class sub-folder holds audio files"),
    ],
)
def test_empty_root_gives_one_line_error(tmp_path, name, expected):
    (tmp_path / "unrelated").mkdir()
    with pytest.raises(ManifestError) as e:
        load_dataset(name, tmp_path)
    msg = one_line_error(e)
    assert expected in msg
    if name not in ("manifest",):
        assert str(tmp_path) in msg


def test_missing_root_folder(tmp_path):
    with pytest.raises(ManifestError) as e:
        load_dataset("esc50", tmp_path / "nope")
    assert one_line_error(e) == f"ESC-50 root {tmp_path / 'nope'}: folder not found"


def test_metadata_naming_absent_audio(tmp_path):
    root = make_esc50(tmp_path)
    (root / "audio" / "3-100039-A-9.wav").unlink()
    with pytest.raises(ManifestError) as e:
        load_dataset("esc50", root)
    msg = one_line_error(e)
    assert "1 of 15 audio files listed in meta/esc50.csv are missing" in msg
    assert "audio/3-100039-A-9.wav" in msg
    assert len(load_dataset("esc50", root, check_files=False)) == 15


def test_metadata_with_wrong_columns(tmp_path):
    make_us8k(tmp_path)
    write_csv(tmp_path / "metadata" / "UrbanSound8K.csv", ["file", "fold", "class"], [["a.wav", 1, "x"]])
    with pytest.raises(ManifestError) as e:
        load_dataset("urbansound8k", tmp_path)
    assert "lacks column(s) slice_file_name, fsID" in one_line_error(e)


def test_fsd_missing_test_csv(tmp_path):
    make_fsd(tmp_path)
    (tmp_path / "FSDKaggle2018.meta" / "test_post_competition_scoring_clips.csv").unlink()
    with pytest.raises(ManifestError) as e:
        load_dataset("fsdkaggle2018", tmp_path)
    assert "FSDKaggle2018.meta/test_post_competition_scoring_clips.csv not found" in one_line_error(e)


@pytest.mark.parametrize(
    "name, make, empty",
    [
        ("crema_d", make_crema, "AudioWAV"),
        ("vocalsound", make_vocalsound, "audio_16k"),
        ("sesa", make_sesa, "test"),
    ],
)
def test_empty_audio_folder(tmp_path, name, make, empty):
    make(tmp_path)
    for p in (tmp_path / empty).iterdir():
        p.unlink()
    with pytest.raises(ManifestError) as e:
        load_dataset(name, tmp_path)
    assert f"no audio files in {empty}/" in one_line_error(e)


def test_beijing_empty_class_folder(tmp_path):
    make_beijing(tmp_path, n=2)
    for p in (tmp_path / "BeijingOpera" / "daluo").iterdir():
        p.unlink()
    with pytest.raises(ManifestError) as e:
        load_dataset("beijing_opera", tmp_path)
    assert "no audio files in daluo/" in one_line_error(e)


def test_crema_d_badly_named_file(tmp_path):
    make_crema(tmp_path)
    wav(tmp_path / "AudioWAV" / "1001_DFA_XYZ_XX.wav")
    with pytest.raises(ManifestError) as e:
        load_dataset("crema_d", tmp_path)
    assert "AudioWAV/1001_DFA_XYZ_XX.wav is not named" in one_line_error(e)
