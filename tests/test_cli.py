"""The `mgcl` command: exit codes, one-line errors, outputs."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mgcl.cli import main
from tests.conftest import tone


def write_manifest(path: Path, rows, header=("path", "label")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def small_set(tmp_path, write_wav):
    rows = []
    for i in range(4):
        p = write_wav(f"set/audio/c{i}.wav", tone(300 + 200 * i, 1.0 + 0.5 * i, 22050, seed=i), 22050)
        rows.append((p.relative_to(tmp_path / "set").as_posix(), "a" if i % 2 else "b"))
    return write_manifest(tmp_path / "set" / "manifest.csv", rows)


def test_help_for_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("embed", "demo"):
        assert cmd in out
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage: mgcl " + cmd in capsys.readouterr().out


def test_embed_then_all_cache_hits(tmp_path, small_set, capsys):
    pytest.importorskip("aisfx")
    store = tmp_path / "store"
    assert main(["embed", "--backbone", "aisfx", "--manifest", str(small_set), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "computed: 4, cache hits: 0, failed: 0" in out
    assert len(list(store.rglob("*.safetensors"))) == 4
    assert main(["embed", "--backbone", "aisfx", "--manifest", str(small_set), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "computed: 0, cache hits: 4, failed: 0" in out
    assert "clips/s" in out


def test_embed_lists_bad_files_and_keeps_good_ones(tmp_path, write_wav, capsys):
    good = write_wav("d/good.wav", tone(440, 1.0, 8000), 8000)
    (tmp_path / "d" / "bad.wav").write_text("garbage" * 50)
    absolute_good = write_wav("elsewhere/abs.wav", tone(880, 1.0, 8000), 8000)
    m = write_manifest(
        tmp_path / "d" / "m.csv",
        [("good.wav", "x"), ("bad.wav", "x"), ("missing.ogg", "y"), (str(absolute_good), "y")],
    )
    store = tmp_path / "store"
    code = main(["embed", "--backbone", "aisfx", "--manifest", str(m), "--store", str(store)])
    captured = capsys.readouterr()
    assert code == 1
    assert "computed: 2, cache hits: 0, failed: 2" in captured.out
    assert "bad.wav: not audio or undecodable" in captured.err
    assert "missing.ogg: file not found" in captured.err
    assert len(list(store.rglob("*.safetensors"))) == 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["embed", "--backbone", "nope", "--manifest", "{m}"], "unknown backbone 'nope'"),
        (["embed", "--manifest", "{missing}"], "manifest not found"),
        (["embed", "--manifest", "{bad_header}"], "header must have columns path, label"),
    ],
)
def test_one_line_errors(tmp_path, small_set, capsys, argv, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.wav,x\n")
    argv = [a.format(m=small_set, missing=tmp_path / "none.csv", bad_header=bad) for a in argv]
    code = main(argv + ["--store", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "mgcl.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("mgcl ")
