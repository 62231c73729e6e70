"""The engine seam without Ray: choices and their one-line errors, the local engine is
today's path, the command line's engine options, and predict's Parquet output."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from mgcl.cli import main
from mgcl.cli.predict import render_parquet
from mgcl.engines import LOCAL, Engine, embed_with
from mgcl.engines.ray_engine import require_ray
from mgcl.errors import MgclError
from mgcl.store.features import FeatureStore, embed_sources
from tests.conftest import file_uri, tone
from tests.engines.conftest import max_diff, store_keys


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"kind": "spark"}, "unknown engine 'spark'"),
        ({"kind": "ray", "workers": 0}, "--workers must be a positive integer"),
        ({"kind": "ray", "cpus_per_worker": 0}, "--cpus-per-worker must be positive"),
        ({"kind": "ray", "gpus_per_worker": -1}, "--gpus-per-worker must be 0 or more"),
    ],
)
def test_bad_engine_choices_are_one_line_errors(kw, words):
    with pytest.raises(MgclError, match=words):
        Engine(**kw)


def test_threads_of_a_worker_are_its_cpus_at_least_one():
    assert Engine("ray", cpus_per_worker=4).threads == 4 and Engine("ray", cpus_per_worker=0.5).threads == 1


def test_the_local_engine_is_embed_sources(counting_backbone, write_wav, tmp_path):
    paths = [write_wav(f"t{k}.wav", tone(300 + 200 * k, 1.0, 8000), 8000) for k in range(3)]
    paths.append(tmp_path / "missing.wav")
    a = embed_with(LOCAL, counting_backbone, paths, FeatureStore(tmp_path / "a", counting_backbone.identity), 2)
    b = embed_sources(counting_backbone, paths, FeatureStore(tmp_path / "b", counting_backbone.identity), 2)
    assert a.errors == b.errors and a.computed == b.computed == 3
    assert all((x[0] == y[0]).all() and (x[1] == y[1]).all() for x, y in zip(a.values[:3], b.values[:3]))
    assert embed_with(None, counting_backbone, paths[:1]).computed == 1


def test_ray_options_without_the_ray_engine_are_refused(tmp_path, capsys):
    code = main(["embed", "--manifest", str(tmp_path / "m.csv"), "--workers", "2"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "mgcl embed: error: --workers goes with --engine ray"


def test_without_ray_the_ray_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MgclError, match=r"pip install 'mgcl\[ray\]'"):
        require_ray()


def test_without_pyarrow_parquet_output_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MgclError, match="needs pyarrow"):
        render_parquet([])


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_predictions_hold_file_label_probability_and_top_k(tmp_path):
    import pyarrow.parquet as pq

    records = [
        {"path": "a.wav", "label": "dog", "score": 0.75, "top_k": [{"label": "dog", "score": 0.75}]},
        {"path": "b.wav", "label": "cat", "score": 0.5, "top_k": [{"label": "cat", "score": 0.5}]},
    ]
    (tmp_path / "p.parquet").write_bytes(render_parquet(records))
    rows = pq.read_table(tmp_path / "p.parquet").to_pylist()
    top = [{"label": "cat", "probability": 0.5}]
    assert rows[1] == {"file": "b.wav", "label": "cat", "probability": 0.5, "top_k": top}


def test_file_uris_on_the_local_engine_give_the_local_paths_results(local_reference, clip_set, tmp_path):
    """Every clip as a file:// URI (pyarrow.fs: hashed and decoded from memory) and one of an
    unknown scheme: the same store keys, bit-identical features and the same error rows (the
    URI in place of the path) as the local paths; the unknown scheme is one more error row."""
    pytest.importorskip("pyarrow.fs")
    paths, _, _ = clip_set
    bb, local_store, local = local_reference("aisfx")
    uris = [file_uri(p) for p in paths] + ["foo://bucket/x.wav"]
    store = FeatureStore(tmp_path, bb.identity)
    got = embed_with(LOCAL, bb, uris, store, batch_size=3)
    assert store_keys(store.root) == store_keys(local_store.root) and got.computed == 8
    assert got.ok == local.ok and max_diff(local, got) == 0.0
    want = {i: e.replace(paths[i], uris[i]) for i, e in local.errors.items()}
    want[len(paths)] = (
        "foo://bucket/x.wav: unknown URI scheme 'foo://' (pyarrow.fs reads file://, s3://, gs://, hdfs://)"
    )
    assert got.errors == want and len(want) == 4
