"""The Ray engine on a local Ray instance (``ray.init(num_cpus=2)``, one for the module): the
same store keys, errors, features and predictions as the local engine; resume after an
interrupted run; an actor that dies mid-run.

Features are bit-identical to the local engine's here: each actor call embeds exactly one
local batch (same clips, same padding), and the backbones' CPU kernels give the same bits
whatever the thread count (measured: torch 2.13 CPU, 1 thread per actor vs 2 locally); the
tests assert the 1e-5 contract and report exactness in the assertion message.
"""

from __future__ import annotations

import copy
import csv
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mgcl.classifier.estimator import FewShotAudioClassifier
from mgcl.cli import main
from mgcl.engines import Engine, embed_with
from mgcl.engines.ray_engine import CRASH_ONCE_ENV
from mgcl.errors import MgclError
from mgcl.store.features import FeatureStore
from tests.conftest import file_uri
from tests.engines.conftest import OBJECT_STORE_BYTES, max_diff, needs_ray, ray_processes, store_keys

pytestmark = needs_ray


@pytest.fixture(scope="module")
def local_ray(ray_token, ray_dir):
    """One local Ray instance for the module (2 CPUs, bounded object store), shut down after;
    no process of it may outlive the module."""
    import ray

    temp = ray_dir / "local"
    ray.init(
        num_cpus=2,
        object_store_memory=OBJECT_STORE_BYTES,
        include_dashboard=False,
        logging_level=logging.WARNING,
        _temp_dir=str(temp),
    )
    yield ray
    ray.shutdown()
    import time

    for _ in range(50):  # raylet and workers exit within a few seconds of the shutdown
        if not ray_processes(str(temp)):
            break
        time.sleep(0.2)
    assert not ray_processes(str(temp)), "Ray processes left after ray.shutdown()"


def ray_run(bb, paths, store, **kw):
    engine = Engine("ray", workers=kw.pop("workers", 2))
    return embed_with(engine, bb, paths, store=store, batch_size=kw.pop("batch_size", 3), **kw)


@pytest.mark.parametrize("name", ["aisfx", "clap-tiny-random"])
def test_ray_engine_gives_the_local_results(name, local_ray, local_reference, clip_set, tmp_path):
    paths, labels, _ = clip_set
    bb, local_store, local = local_reference(name)
    store = FeatureStore(tmp_path, bb.identity)
    got = ray_run(bb, paths, store, workers=2 if name == "aisfx" else 1)  # one transformers import is enough
    assert got.errors == local.errors and len(got.errors) == 3  # garbage, empty, missing: same lines
    assert "garbage.wav: not audio or undecodable" in got.errors[3]
    assert got.ok == local.ok and got.computed == local.computed == 8 and got.cache_hits == 0
    assert store_keys(store.root) == store_keys(local_store.root) and len(store_keys(store.root)) == 8
    diff = max_diff(local, got)
    assert diff <= 1e-5, f"{name}: max abs difference {diff}"
    # the same predictions from the same model on either engine's features
    ok = got.ok
    train = [i for i in ok if i % 2 == 0]
    clf = FewShotAudioClassifier(backbone=bb, method="prototype", store=False).fit_features(
        local.stacked(train), [labels[i] for i in train]
    )
    assert clf.top_k_features(local.stacked(ok), 2) == clf.top_k_features(got.stacked(ok), 2)
    # a second run is all store hits: no Ray work at all
    again = ray_run(bb, paths, store)
    assert again.computed == 0 and again.cache_hits == 8 and again.errors == local.errors


def test_an_interrupted_run_resumes_with_only_the_missing_clips(local_ray, local_reference, clip_set, tmp_path):
    paths, _, _ = clip_set
    bb, _, local = local_reference("aisfx")
    store = FeatureStore(tmp_path, bb.identity)
    ticks = []

    def stop_after_four(k):
        ticks.append(k)
        if sum(ticks) >= 4:  # the missing file, then three rows: Ctrl-C mid-run
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ray_run(bb, paths, store, batch_size=2, progress=stop_after_four, workers=1)
    done = store_keys(store.root)
    assert all(k.endswith(".safetensors") for k in done)  # no partial entry, no temporary file
    assert 0 < len(done) < 8
    again = ray_run(bb, paths, store, batch_size=2, workers=1)
    assert again.cache_hits == len(done) and again.computed == 8 - len(done)
    assert again.errors == local.errors and max_diff(local, again) <= 1e-5
    assert len(store_keys(store.root)) == 8


def test_an_actor_that_dies_mid_run_is_restarted_and_the_run_completes(
    local_ray, local_reference, clip_set, tmp_path, monkeypatch
):
    paths, _, _ = clip_set
    bb, local_store, local = local_reference("aisfx")
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ONCE_ENV, str(marker))
    store = FeatureStore(tmp_path / "store", bb.identity)
    got = ray_run(bb, paths, store, batch_size=2, workers=1)  # the only actor dies: Ray must restart it
    assert marker.is_file(), "the test hook did not kill an actor"
    assert got.errors == local.errors and got.computed == 8
    assert store_keys(store.root) == store_keys(local_store.root)
    assert max_diff(local, got) <= 1e-5


def test_in_memory_waveforms_are_refused_in_one_line(local_ray, counting_backbone):
    import numpy as np

    with pytest.raises(MgclError, match="in-memory waveforms"):
        ray_run(counting_backbone, [(np.zeros(800, np.float32), 8000)], None)


def test_a_worker_whose_backbone_differs_stops_the_run_in_one_line(local_ray, local_reference, clip_set, tmp_path):
    bb, _, _ = local_reference("aisfx")
    impostor = copy.copy(bb)
    impostor.identity = "aisfx:some-other-weights"
    with pytest.raises(MgclError, match="differs from this one") as info:
        ray_run(impostor, clip_set[0][:2], FeatureStore(tmp_path, impostor.identity), workers=1)
    assert "\n" not in str(info.value)
    assert not any(tmp_path.rglob("*.safetensors"))


def test_uris_on_the_ray_engine_give_the_local_predictions_store_and_features(
    local_ray, local_reference, clip_set, tmp_path, capsys
):
    """``mgcl predict MODEL file://folder/ uris.csv --engine ray`` (a URI folder and a manifest
    of URIs): the driver hashes through pyarrow.fs, the workers read and decode from memory;
    the local paths' predictions, error rows (with the URIs), store keys and features. Then
    ``mgcl embed --manifest file://.../manifest.csv --engine ray`` (relative rows: URIs next
    to it) finds every good clip in that store; the two undecodable files fail again on the
    workers, the missing one on the driver, each named by its URI."""
    pytest.importorskip("pyarrow.fs")
    paths, labels, manifest = clip_set
    _, local_store, _ = local_reference("aisfx")
    support = tmp_path / "support.csv"
    support.write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in zip(paths, labels) if lab))
    model, store = tmp_path / "model", str(local_store.root)  # the local features: hits, read only
    fit = ["fit", "--manifest", str(support), "--backbone", "aisfx", "--method", "prototype", "--descriptions", "none"]
    assert main([*fit, "--store", store, "--out", str(model)]) == 0
    folder = Path(paths[0]).parent
    uris = tmp_path / "uris.csv"  # a manifest of URIs: a good one and a missing one
    uris.write_text(f"path,label\n{file_uri(paths[0])},x\n{file_uri(folder / 'gone.wav')},x\n")
    code_l = main(["predict", str(model), str(folder), paths[0], "--store", store, "--out", str(tmp_path / "l.csv")])
    ray = ["--engine", "ray", "--workers", "1", "--batch-size", "3"]
    remote = [file_uri(folder), str(uris), "--store", str(tmp_path / "r"), "--out", str(tmp_path / "r.csv")]
    code_r = main(["predict", str(model), *remote, *ray])
    err = capsys.readouterr().err
    assert code_l == code_r == 1 and f"{file_uri(folder / 'gone.wav')}: file not found" in err
    read = lambda p: [(r["file"], r["label"], r["probability"], r["top_k"]) for r in csv.DictReader(p.open())]
    want = [(file_uri(f), *rest) for f, *rest in read(tmp_path / "l.csv")]
    assert read(tmp_path / "r.csv") == want and len(want) == 9
    keys = store_keys(local_store.root)
    assert store_keys(tmp_path / "r") == keys and len(keys) == 8
    for k in keys:
        a, b = load_file(str(local_store.root / k)), load_file(str(tmp_path / "r" / k))
        assert all(torch.equal(a[n], b[n]) for n in ("clip", "frames")), k  # bit-identical here
    embed = ["embed", "--manifest", file_uri(manifest), "--backbone", "aisfx", "--store", str(tmp_path / "r")]
    assert main([*embed, *ray]) == 1
    out, err = capsys.readouterr()
    assert "computed: 0, cache hits: 8, failed: 3" in out
    failed = [line for line in err.splitlines() if "FAILED" in line]
    assert len(failed) == 3 and all(file_uri(folder) + "/" in line for line in failed), failed
