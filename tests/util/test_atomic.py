"""Crash-safe writes: the old file or the new one, never half, never a temp file left."""

from __future__ import annotations

import os
import sys

import pytest

from mgcl.util.atomic import atomic_write, atomic_write_bytes, default_file_mode


def test_writes_creates_parents_and_has_the_usual_mode(tmp_path):
    target = tmp_path / "a" / "b" / "f.json"
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert (target.stat().st_mode & 0o777) == default_file_mode()
    assert os.listdir(target.parent) == ["f.json"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def half_then_crash(tmp):
        with open(tmp, "w") as fh:
            fh.write("ne")
        raise KeyboardInterrupt  # also BaseException, as a Ctrl-C would be

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_download_module_does_not_import_torch():
    code = "import sys, mgcl.data.download; print('torch' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
