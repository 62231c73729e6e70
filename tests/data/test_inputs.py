"""What a command is pointed at, as audio files (mgcl.data.inputs): folders, manifests, files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from mgcl.audio.decode import SUPPORTED_EXTENSIONS, file_digest, load_audio
from mgcl.data.inputs import audio_files, class_folders, expand_inputs, is_audio_name
from mgcl.data.manifest import read_manifest
from mgcl.errors import AudioError, ManifestError, MgclError
from tests.conftest import file_uri

EXT = SUPPORTED_EXTENSIONS


def touch(root: Path, *names: str) -> list[Path]:
    """Empty files (nothing here decodes audio)."""
    out = []
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
        out.append(p)
    return out


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "clips"
    touch(
        root,
        "clip10.wav",
        "clip2.wav",
        "Clip1.WAV",
        "notes.txt",
        "cover.jpg",
        ".hidden.wav",
        "sub/deeper/b.flac",
        "sub/a.ogg",
        "sub/readme.md",
        ".cache/x.wav",
        "__MACOSX/._clip2.wav",
    )
    return root


def rel(paths, root):
    return [p.relative_to(root).as_posix() for p in paths]


def test_is_audio_name():
    assert is_audio_name("a.WAV", EXT) and is_audio_name(Path("x/b.flac"), EXT)
    assert not is_audio_name("a.txt", EXT) and not is_audio_name(".a.wav", EXT) and not is_audio_name("wav", EXT)
    assert is_audio_name("a.opus", ["opus"])  # suffixes with or without the dot


def test_audio_files_nested_natural_order_non_audio_and_hidden_skipped(tree):
    found = audio_files(tree, EXT)
    assert rel(found, tree) == ["Clip1.WAV", "clip2.wav", "clip10.wav", "sub/a.ogg", "sub/deeper/b.flac"]
    assert all(p.parent == tree or tree in p.parents for p in found)  # folder / relative path, as given


def test_audio_files_of_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(MgclError, match="nope: folder not found"):
        audio_files(tmp_path / "nope", EXT)


def test_expand_mixes_files_folders_and_manifests_in_order(tmp_path, tree):
    single = touch(tmp_path, "single.mp3")[0]
    touch(tmp_path, "m/audio/x10.wav", "m/audio/x9.wav")
    manifest = tmp_path / "m" / "list.csv"
    manifest.write_text("path,label\naudio/x10.wav,a\naudio/x9.wav,b\n")
    out = expand_inputs([single, tree / "sub", manifest, tree / "notes.txt"], EXT)
    assert out == [
        single,
        tree / "sub" / "a.ogg",
        tree / "sub" / "deeper" / "b.flac",
        tmp_path / "m" / "audio" / "x10.wav",  # a manifest keeps its rows' order
        tmp_path / "m" / "audio" / "x9.wav",
        tree / "notes.txt",  # an existing file named explicitly: the decoder's to judge
    ]
    assert [r.path for r in read_manifest(manifest)] == out[3:5]
    assert expand_inputs([str(tree)], EXT) == audio_files(tree, EXT)
    assert expand_inputs([tree, tree], EXT) == audio_files(tree, EXT) * 2  # nothing deduplicated


def test_expand_passes_a_missing_audio_file_on_for_the_batch_to_report(tmp_path):
    assert expand_inputs([tmp_path / "gone.wav"], EXT) == [tmp_path / "gone.wav"]


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda t: t / "typo_folder", "typo_folder: no such file or folder (resolved to "),
        (lambda t: touch(t, "empty/readme.txt")[0].parent, "empty: no audio files (.aif"),
    ],
)
def test_expand_errors_are_one_line(tmp_path, make, message):
    with pytest.raises(MgclError) as e:
        expand_inputs([make(tmp_path)], EXT)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_expand_missing_or_bad_manifest_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="none.csv: manifest not found"):
        expand_inputs([tmp_path / "none.csv"], EXT)
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.wav,x\n")
    with pytest.raises(ManifestError, match="header must have columns path, label"):
        expand_inputs([bad], EXT)


def test_class_folders(tmp_path):
    root = tmp_path / "my_sounds"
    touch(root, "dog/b2.wav", "dog/b10.wav", "dog/night/b1.ogg", "cat10/m.wav", "cat2/m.flac", "cat2/x.txt")
    touch(root, ".git/objects/z.wav", "readme.md")
    classes = class_folders(root, EXT)
    assert [c for c, _ in classes] == ["cat2", "cat10", "dog"]
    assert rel(classes[2][1], root / "dog") == ["b2.wav", "b10.wav", "night/b1.ogg"]
    assert rel(classes[0][1], root / "cat2") == ["m.flac"]


def test_class_folders_loose_files_are_left_out_with_a_warning(tmp_path, caplog):
    root = tmp_path / "s"
    touch(root, "a/1.wav", "b/1.wav", "stray.wav")
    with caplog.at_level(logging.WARNING, logger="mgcl.data.inputs"):
        classes = class_folders(root, EXT)
    assert [len(f) for _, f in classes] == [1, 1]
    assert "belong to no class" in caplog.text and "stray.wav" in caplog.text


@pytest.mark.parametrize(
    "names,message",
    [
        (("a/1.wav", "b/notes.txt"), "class folder 'b' has no audio files"),
        (("1.wav",), "no sub-folders"),
    ],
)
def test_class_folders_errors_are_one_line(tmp_path, names, message):
    touch(tmp_path / "s", *names)
    with pytest.raises(MgclError) as e:
        class_folders(tmp_path / "s", EXT)
    assert message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MgclError, match="folder not found"):
        class_folders(tmp_path / "nothing", EXT)


def test_missing_manifest_row_names_the_resolved_absolute_path(tmp_path, monkeypatch):
    """A manifest row is resolved against the manifest's folder: the error says where that led."""
    monkeypatch.chdir(tmp_path)
    Path("support.csv").write_text("path,label\naudio/typing/typing01.ogg,typing\n")
    (row,) = read_manifest("support.csv")
    tried = os.path.abspath(os.path.join("audio", "typing", "typing01.ogg"))
    for read in (file_digest, lambda p: load_audio(p, 16000)):
        with pytest.raises(AudioError) as e:
            read(row.path)
        assert str(e.value) == f"audio/typing/typing01.ogg: file not found (resolved to {tried})"
    absolute = tmp_path / "gone.wav"
    with pytest.raises(AudioError) as e:
        file_digest(absolute)
    assert str(e.value) == f"{absolute}: file not found"  # an absolute path is not repeated


def test_uri_folders_manifests_and_files_expand_like_local_ones(tmp_path, tree):
    """A file:// folder lists the local folder's audio files (same order, hidden and
    __MACOSX skipped) as URIs; a manifest's URI rows stay URIs; a manifest at a URI has its
    relative rows next to it; files pass as given."""
    pytest.importorskip("pyarrow.fs")
    touch(tree, "sub dir/c.wav")
    local = expand_inputs([tree], EXT)
    assert expand_inputs([file_uri(tree)], EXT) == [file_uri(p) for p in local]
    manifest = tmp_path / "uris.csv"
    manifest.write_text(f"path,label\n{file_uri(local[0])},a\nclips/sub/a.ogg,b\n")
    rows = read_manifest(manifest)
    assert [r.path for r in rows] == [file_uri(local[0]), tree / "sub" / "a.ogg"]
    remote = [file_uri(local[0]), file_uri(tree / "sub" / "a.ogg")]
    assert [r.path for r in read_manifest(file_uri(manifest))] == remote
    gone = file_uri(tmp_path / "gone.wav")  # the batch reports it, as a missing local file
    assert expand_inputs([gone, file_uri(manifest)], EXT) == [gone, *remote]


@pytest.mark.parametrize(
    "given,message",
    [
        ("foo://bucket/clips", "foo://bucket/clips: unknown URI scheme 'foo://' (pyarrow.fs reads file://, s3://"),
        ("file:///nonexistent/mgcl/clips", "file:///nonexistent/mgcl/clips: no such file or folder"),
        ("file:///nonexistent/mgcl/list.csv", "file:///nonexistent/mgcl/list.csv: manifest not found"),
    ],
)
def test_uri_input_errors_are_one_line(given, message):
    pytest.importorskip("pyarrow.fs")
    with pytest.raises(MgclError) as e:
        expand_inputs([given], EXT)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
