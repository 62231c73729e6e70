"""The one dataset type (mgcl.data.sources), the protocol rule and the catalog's look-ups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mgcl.data import catalog
from mgcl.data.catalog import CATALOG, available_datasets, canonical_name, from_layout, known_datasets, load_dataset
from mgcl.data.manifest import Row
from mgcl.data.sources import Dataset, from_manifest, protocol_of
from mgcl.errors import ManifestError, MgclError

from .test_datasets import make_esc50, make_us8k, wav, write_csv

# ----------------------------------------------------------------------------- protocol_of


@pytest.mark.parametrize(
    "folds, splits, expected",
    [
        (["1", "2", "10"], None, "folds"),
        (["1", "2"], ["train", "test"], "folds"),  # folds win when both columns are full
        ([None, None], ["train", "test"], "split"),
        (None, ["train", " test "], "split"),
        (["", " "], [None, ""], "random"),
        (None, None, "random"),
        ([], [], "random"),
    ],
)
def test_protocol_of(folds, splits, expected):
    assert protocol_of(folds, splits) == expected


def test_protocol_of_rejects_a_partly_filled_column():
    with pytest.raises(ManifestError) as e:
        protocol_of(["1", None, "", "2"], None, paths=["a.wav", "b.wav", "c.wav", "d.wav"], source="set.csv")
    assert str(e.value) == ("set.csv: 2 of 4 rows have no fold (e.g. b.wav); give every row a fold or none")
    with pytest.raises(ManifestError, match=r"^1 of 2 rows have no split \(e.g. row 2\)"):
        protocol_of([None, None], ["train", None])
    with pytest.raises(ManifestError, match="no split"):  # a full fold column does not excuse it
        protocol_of(["1", "2"], ["train", None])


# ----------------------------------------------------------------------------- Dataset


def rows(*specs) -> list[Row]:
    return [Row(Path(f"/d/{i}.wav"), label, fold, split) for i, (label, fold, split) in enumerate(specs)]


def test_dataset_fields_follow_from_the_rows():
    ds = Dataset(
        "set",
        rows(("dog_bark", "1", None), ("siren", "10", None), ("dog_bark", "2", None)),
        display_names={"siren": "police siren"},
        root=Path("/d"),
    )
    assert ds.protocol == "folds" and ds.classes == ["dog_bark", "siren"]
    assert ds.folds == ["1", "10", "2"] and ds.splits is None and ds.fold_ids == ("1", "2", "10")
    assert ds.display_names == {"dog_bark": "dog_bark", "siren": "police siren"}
    assert ds.names(["siren", "dog_bark", "other"]) == ["police siren", "dog_bark", "other"]
    assert ds.manifest == Path("/d/manifest.csv") and ds.origin == "/d/manifest.csv"
    assert ds.groups == [None] * 3 and len(ds) == 3
    split = Dataset("set", rows(("a", None, "test"), ("b", None, "dev"), ("a", None, "train")))
    assert split.protocol == "split" and split.splits == ["test", "dev", "train"] and split.folds is None
    assert split.split_ids == ("train", "test", "dev")
    assert Dataset("set", rows(("a", None, None))).protocol == "random"
    with pytest.raises(ManifestError, match=r"^set: 1 of 2 rows have no fold \(e.g. /d/1.wav\)"):
        Dataset("set", rows(("a", "1", None), ("b", None, None)))
    with pytest.raises(ValueError, match="1 groups for 2 rows"):
        Dataset("set", rows(("a", None, None), ("b", None, None)), groups=["g"])


def test_with_names():
    ds = Dataset("set", rows(("a", None, None), ("b", None, None)), title="Set")
    named = ds.with_names({"a": " the a "})
    assert named.names(["a", "b"]) == ["the a", "b"] and ds.names(["a"]) == ["a"]
    assert named.protocol == "random" and named.rows == ds.rows
    assert ds.with_names(None) is ds
    with pytest.raises(ManifestError, match=r"^Set: labels not in the data: c \(labels are e.g. a, b\)"):
        ds.with_names({"c": "x"})
    with pytest.raises(ManifestError, match="the name of 'a' must be a non-empty string"):
        ds.with_names({"a": " "})


# ----------------------------------------------------------------------------- from_manifest


def make_manifest(tmp_path: Path, folds=("1", "1", "2", "2")) -> Path:
    for i in range(4):
        wav(tmp_path / "clips" / f"{i}.wav")
    return write_csv(
        tmp_path / "set.csv",
        ["path", "label", "fold"],
        [
            [f"clips/{i}.wav", label, f]
            for i, (label, f) in enumerate(zip(["dog_bark", "siren", "dog_bark", "siren"], folds))
        ],
    )


def test_from_manifest(tmp_path):
    csv_path = make_manifest(tmp_path)
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"siren": "police siren"}))
    ds = from_manifest("set", csv_path, names)
    assert ds.name == "set" and len(ds) == 4 and ds.protocol == "folds" and ds.folds == ["1", "1", "2", "2"]
    assert ds.names(["dog_bark", "siren"]) == ["dog_bark", "police siren"]  # labels as written
    assert ds.manifest == csv_path and ds.origin == str(csv_path) and ds.root == tmp_path
    names.write_text(json.dumps({"nosuch": "x"}))
    with pytest.raises(MgclError, match="labels not in the data: nosuch"):
        from_manifest("set", csv_path, names)


def test_a_partly_filled_fold_column_is_an_error_everywhere(tmp_path):
    csv_path = make_manifest(tmp_path, folds=("1", "", "2", "2"))
    with pytest.raises(ManifestError) as e:
        from_manifest("set", csv_path)
    assert "1 of 4 rows have no fold" in str(e.value) and "clips/1.wav" in str(e.value)
    with pytest.raises(ManifestError, match="1 of 4 rows have no fold"):
        load_dataset("manifest", csv_path)


def test_manifest_loader_names_its_csv(tmp_path):
    ds = load_dataset("manifest", make_manifest(tmp_path))
    assert ds.manifest == (tmp_path / "set.csv").resolve() and ds.names(["dog_bark"]) == ["dog bark"]


# ----------------------------------------------------------------------------- from_layout


def test_from_layout(tmp_path):
    root = make_us8k(tmp_path / "UrbanSound8K")
    ds = from_layout("US8K", tmp_path)
    assert ds.name == "US8K" and ds.origin == str(tmp_path)  # named as asked, rows from the loader
    assert ds.title == "UrbanSound8K" and ds.citation == CATALOG["urbansound8k"].citation
    assert ds.protocol == "folds" and len(ds.folds) == 20 and ds.groups[0] == "1001"
    assert ds.root == root.resolve() and ds.manifest == root.resolve() / "manifest.csv"
    assert ds.names(["gun_shot"]) == ["gun shot"]
    assert from_layout("us8k", tmp_path, {"gun_shot": "gunfire"}).names(["gun_shot"]) == ["gunfire"]


@pytest.mark.parametrize(
    "name, root, message",
    [
        ("nosuch", ".", "unknown dataset 'nosuch' (choose from: esc50, esc10, urbansound8k"),
        ("esc50", None, "dataset 'esc50' needs --root DIR"),
        ("esc50", "missing", "folder not found (dataset 'esc50')"),
    ],
)
def test_from_layout_errors(tmp_path, name, root, message):
    with pytest.raises(MgclError) as e:
        from_layout(name, None if root is None else tmp_path / root)
    assert message in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------- catalog


def test_catalog_names_and_aliases():
    assert known_datasets() == list(available_datasets()) == list(CATALOG)
    for alias, name in [
        ("US8K", "urbansound8k"),
        ("UrbanSound", "urbansound8k"),
        ("ESC-50", "esc50"),
        ("esc", "esc50"),
        ("Beijing Opera", "beijing_opera"),
        ("CREMA-D", "crema_d"),
        ("DCASE2017", "tut2017"),
        ("csv", "manifest"),
        ("folder", "folders"),
    ]:
        assert canonical_name(alias) == name
    assert canonical_name("esc51") is None
    for entry in CATALOG.values():
        assert entry.title and entry.description and "\n" not in entry.description and callable(entry.loader)
        assert entry.name in ("manifest", "folders") or (entry.citation and entry.url and entry.downloadable)


def test_one_citation_per_dataset(tmp_path):
    ds = load_dataset("esc50", make_esc50(tmp_path))
    assert ds.citation == CATALOG["esc50"].citation and ds.url == CATALOG["esc50"].url
    assert ds.title == "ESC-50" and CATALOG["esc10"].citation == ds.citation


def test_registered_dataset_loads_by_name(tmp_path, monkeypatch):
    def load_toy(root, n=1):
        return Dataset("toy", [Row(Path(root) / f"{i}.wav", "x") for i in range(n)], root=Path(root))

    monkeypatch.setattr(catalog, "CATALOG", dict(CATALOG))
    catalog.register_dataset(
        catalog.Entry(name="toy", title="Toy", description="a toy", loader=load_toy, aliases=("toyset",))
    )
    assert len(load_dataset("ToySet", tmp_path, n=3)) == 3 and "toy" in known_datasets()
    with pytest.raises(ManifestError, match=r"Toy: unknown option\(s\) m \(accepted: n\)"):
        load_dataset("toy", tmp_path, m=1)


@pytest.mark.parametrize(
    "module",
    ["mgcl.data.layouts", "mgcl.data.sources", "mgcl.data.catalog", "mgcl.data.download", "mgcl.data.manifest"],
)
def test_each_module_imports_first_and_without_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
