"""``mgcl detect`` end to end: CSV and JSON outputs, errors, and the unknown label."""

import csv
import json

import soundfile as sf

from mgcl.cli import main
from tests.conftest import file_uri

from .conftest import SR, TARGET


def test_detect_writes_csv_and_json(detection_case, tmp_path, capsys):
    root = detection_case["root"]
    short = tmp_path / "short.wav"
    sf.write(short, detection_case["wave"][: 21 * SR], SR)  # two sirens: 13.5-15.0 s, 18.1-19.6 s
    store = ["--store", str(root / "store")]
    out_csv = tmp_path / "events.csv"
    assert main(["detect", str(detection_case["model"]), str(short), "--out", str(out_csv), *store]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == ["filename", "onset", "offset", "event_label", "score"]
    sirens = [r for r in rows if r["event_label"] == TARGET]
    truth = [e.onset for e in detection_case["events"] if e.label == TARGET and e.offset < 21]
    assert len(sirens) == len(truth) == 2, rows
    assert all(abs(float(r["onset"]) - t) < 0.5 for r, t in zip(sirens, truth)), rows
    assert all(r["event_label"] != "background" for r in rows)
    assert "thresholds: half-way between held-out support clips" in capsys.readouterr().out

    out_json = tmp_path / "events.json"
    args = ["detect", str(detection_case["model"]), str(short), "--out", str(out_json), "--threshold", "0.45"]
    assert main([*args, "--min-duration", "0.5", *store]) == 0
    doc = json.loads(out_json.read_text())
    assert doc["thresholds"]["how"] == "0.45 (given)" and doc["classes"] == sorted(doc["classes"])
    assert doc["files"][0]["duration"] == 21.0
    assert all(e["offset"] - e["onset"] >= 0.5 for e in doc["events"])
    assert doc["options"]["split_longer"] is None and doc["options"]["split_ratio"] == 0.7
    assert {e["event_label"] for e in doc["events"]} <= {TARGET, "knock"}


def test_detect_errors_are_one_line(detection_case, tmp_path, capsys):
    model = str(detection_case["model"])
    assert main(["detect", model, str(tmp_path / "x.wav"), "--out", str(tmp_path / "e.txt")]) == 2
    assert "must end in .csv or .json" in capsys.readouterr().err
    assert main(["detect", model, str(tmp_path / "x.wav"), "--threshold", "2"]) == 2
    assert "threshold must be a probability" in capsys.readouterr().err
    assert main(["detect", model, str(tmp_path / "x.wav"), "--split-longer", "0"]) == 2
    assert "split-longer must be positive seconds" in capsys.readouterr().err
    assert main(["detect", model, str(tmp_path / "x.wav"), "--split-ratio", "1.5"]) == 2
    assert "split ratio must be in (0, 1]" in capsys.readouterr().err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert main(["detect", model, str(bad), "--threshold", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "bad.wav" in err and "could not be processed" in err


def test_explain_draws_the_timeline_of_a_long_file(detection_case, tmp_path, capsys):
    out = tmp_path / "timeline.png"
    model, rec = str(detection_case["model"]), str(detection_case["recording"])  # 40 s: over 30 s
    assert (
        main(["explain", model, rec, "--out", str(out), "--json", "--store", str(detection_case["root"] / "store")])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
    assert doc["duration"] == 40.0
    sirens = [e for e in doc["events"] if e["event_label"] == TARGET]
    assert len(sirens) == sum(e.label == TARGET for e in detection_case["events"])
    assert all(e["event_label"] != "background" for e in doc["events"])


def test_split_longer_recuts_events_joined_over_the_background(detection_case, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, detection_case["wave"][: 21 * SR], SR)  # two sirens: 13.5-15.0 s, 18.1-19.6 s
    store = ["--store", str(detection_case["root"] / "store")]
    base = ["detect", str(detection_case["model"]), str(short), "--low-ratio", "0.5", "--median", "0.8", *store]

    def sirens(out, *extra):
        assert main([*base, "--out", str(out), *extra]) == 0
        return [e for e in json.loads(out.read_text())["events"] if e["event_label"] == TARGET]

    joined = sirens(tmp_path / "joined.json")
    assert len(joined) == 1 and joined[0]["offset"] - joined[0]["onset"] > 6.0, joined  # both sirens and the gap
    split = sirens(tmp_path / "split.json", "--split-longer", "3", "--split-ratio", "0.8")
    truth = [e for e in detection_case["events"] if e.label == TARGET and e.offset < 21]
    assert len(split) == 2, split
    assert all(abs(e["onset"] - t.onset) < 0.5 and abs(e["offset"] - t.offset) < 0.75 for e, t in zip(split, truth))


def test_detect_streams_a_recording_named_by_a_uri(detection_case, tmp_path, capsys):
    short = tmp_path / "short.wav"
    sf.write(short, detection_case["wave"][: 21 * SR], SR)
    store = ["--store", str(detection_case["root"] / "store")]
    model = str(detection_case["model"])
    assert main(["detect", model, str(short), "--threshold", "0.5", *store]) == 0
    local = [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()]
    assert main(["detect", model, file_uri(short), "--threshold", "0.5", *store]) == 0
    out = capsys.readouterr().out.splitlines()
    assert local and [line.split("\t")[1:] for line in out] == local  # the same events
    assert all(line.startswith(file_uri(short) + "\t") for line in out)  # named by the URI
    assert main(["detect", model, file_uri(tmp_path / "nope.wav"), "--threshold", "0.5", *store]) == 1
    err = capsys.readouterr().err
    assert file_uri(tmp_path / "nope.wav") in err and "file not found" in err
