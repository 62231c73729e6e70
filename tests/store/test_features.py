import multiprocessing as mp
import os

import numpy as np
import pytest
import torch

from mgcl.audio.decode import file_digest
from mgcl.store.features import FeatureStore, ViewCache, embed_sources
from tests.conftest import CountingBackbone, tone


def make_files(write_wav, n=6, sr=8000):
    return [write_wav(f"c{i}.wav", tone(200 + 150 * i, 0.5 + 0.25 * i, sr, seed=i), sr) for i in range(n)]


def test_miss_then_hit_costs_no_forward(tmp_path, write_wav):
    files = make_files(write_wav)
    bb = CountingBackbone()
    store = FeatureStore(tmp_path / "store", bb.identity)
    first = embed_sources(bb, files, store, batch_size=4)
    assert first.computed == 6 and first.cache_hits == 0 and bb.clips_encoded == 6
    second = embed_sources(bb, files, FeatureStore(tmp_path / "store", bb.identity), batch_size=4)
    assert second.cache_hits == 6 and second.computed == 0
    assert bb.clips_encoded == 6  # no new forward
    for a, b in zip(first.values, second.values):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_key_is_content_not_path(tmp_path, write_wav):
    x = tone(300, 0.5, 8000)
    a = write_wav("a.wav", x, 8000)
    b = write_wav("sub/b.wav", x, 8000)
    assert file_digest(a) == file_digest(b)
    bb = CountingBackbone()
    store = FeatureStore(tmp_path / "store", bb.identity)
    embed_sources(bb, [a], store)
    res = embed_sources(bb, [b], store)
    assert res.cache_hits == 1 and bb.clips_encoded == 1


def test_other_backbone_identity_misses(tmp_path, write_wav):
    files = make_files(write_wav, 2)
    bb = CountingBackbone()
    embed_sources(bb, files, FeatureStore(tmp_path / "s", bb.identity))
    bb2 = CountingBackbone()
    bb2.identity = "counting-test:v2"
    res = embed_sources(bb2, files, FeatureStore(tmp_path / "s", bb2.identity))
    assert res.cache_hits == 0 and res.computed == 2


def test_bad_files_do_not_stop_the_batch(tmp_path, write_wav):
    good = make_files(write_wav, 3)
    bad_text = tmp_path / "text.wav"
    bad_text.write_text("not audio" * 20)
    missing = tmp_path / "missing.wav"
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    srcs = [good[0], bad_text, good[1], missing, empty, good[2]]
    bb = CountingBackbone()
    res = embed_sources(bb, srcs, FeatureStore(tmp_path / "s", bb.identity), batch_size=2)
    assert sorted(res.errors) == [1, 3, 4]
    assert "text.wav" in res.errors[1] and "undecodable" in res.errors[1]
    assert "missing.wav" in res.errors[3] and "not found" in res.errors[3]
    assert "empty" in res.errors[4]
    assert res.ok == [0, 2, 5] and res.computed == 3


def test_waveform_sources_are_cached_by_samples(tmp_path):
    bb = CountingBackbone()
    store = FeatureStore(tmp_path / "s", bb.identity)
    w = tone(500, 0.5, 16000)
    r1 = embed_sources(bb, [(w, 16000)], store)
    r2 = embed_sources(bb, [(w.copy(), 16000)], store)
    r3 = embed_sources(bb, [(w, 22050)], store)  # same samples, other rate: other audio
    assert r1.computed == 1 and r2.cache_hits == 1 and r3.computed == 1
    bad = embed_sources(bb, [(np.array([np.nan, 1.0], dtype=np.float32), 16000)], store)
    assert 0 in bad.errors and "NaN" in bad.errors[0]


class Crash(Exception):
    pass


def test_resume_after_crash(tmp_path, write_wav):
    files = make_files(write_wav, 6)
    bb = CountingBackbone()
    real = bb.encode_audio

    def crash_on_third_batch(w):
        if bb.calls == 2:
            raise Crash("killed")
        return real(w)

    bb.encode_audio = crash_on_third_batch
    store = FeatureStore(tmp_path / "s", bb.identity)
    with pytest.raises(Crash):
        embed_sources(bb, files, store, batch_size=2)
    # two batches were stored before the crash; the resume computes only the rest
    bb2 = CountingBackbone()
    res = embed_sources(bb2, files, FeatureStore(tmp_path / "s", bb2.identity), batch_size=2)
    assert res.cache_hits == 4 and res.computed == 2 and bb2.clips_encoded == 2


def test_crash_during_write_leaves_no_entry(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path / "s", "x")
    real_replace = os.replace

    def dying_replace(src, dst):
        raise KeyboardInterrupt  # killed between writing the temp file and publishing it

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        store.put("ab" * 16, torch.ones(4), torch.ones(3, 4))
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.get("ab" * 16) is None
    assert not list(store.dir.rglob("*.safetensors"))
    assert not list(store.dir.rglob("*.tmp"))  # the temp file is cleaned up


def test_truncated_entry_is_a_miss(tmp_path):
    store = FeatureStore(tmp_path / "s", "x")
    key = "cd" * 16
    store.put(key, torch.ones(4), torch.ones(3, 4))
    p = store.path(key)
    p.write_bytes(p.read_bytes()[:20])  # damaged outside mgcl
    assert store.get(key) is None
    store.put(key, torch.zeros(4), torch.zeros(2, 4))
    clip, frames = store.get(key)
    assert clip.shape == (4,) and frames.shape == (2, 4)


def _reader(root, keys, out):
    store = FeatureStore(root, "x")
    ok = 0
    for _ in range(20):
        for k in keys:
            got = store.get(k)
            ok += got is not None and got[1].shape == (5, 4)
    out.put(ok)


def test_two_processes_read_concurrently_while_one_writes(tmp_path):
    root = tmp_path / "s"
    store = FeatureStore(root, "x")
    keys = [f"{i:032x}" for i in range(30)]
    for k in keys[:15]:
        store.put(k, torch.ones(4), torch.ones(5, 4))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(root, keys[:15], q)) for _ in range(2)]
    for p in procs:
        p.start()
    for k in keys[15:]:  # writes while the others read
        store.put(k, torch.ones(4), torch.ones(5, 4))
    for p in procs:
        p.join(60)
    results = [q.get(timeout=5) for _ in procs]
    assert results == [20 * 15, 20 * 15]
    assert all(store.get(k) is not None for k in keys)


def test_entries_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        store = FeatureStore(tmp_path / "s", "x")
        store.put("ef" * 16, torch.ones(4), torch.ones(3, 4))
        mode = store.path("ef" * 16).stat().st_mode & 0o777
        assert mode == 0o644  # readable by others, like any file written with open()
        assert (store.dir / "backbone.json").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


# ----------------------------------------------------------------------------- audio views
def test_view_cache_embeds_each_view_once_through_the_store(tmp_path, write_wav):
    files = make_files(write_wav, n=4)
    bb = CountingBackbone()
    names = ("noise", "lowpass")
    cache = ViewCache(bb, files, FeatureStore(tmp_path / "store", bb.identity), batch_size=3)
    views = cache.views([2, 0], names)
    assert len(views) == 4 and views.source.tolist() == [0, 0, 1, 1]  # positions in [2, 0]
    assert cache.computed == 4 and bb.clips_encoded == 4
    # the clip itself is not a view: its own embedding differs from every view's
    clip = embed_sources(CountingBackbone(), [files[2]]).values[0][0]
    assert not any(torch.allclose(clip, v) for v in views.features.clip[:2])
    again = cache.views([0, 2], names)  # in memory: no forward
    assert bb.clips_encoded == 4 and again.source.tolist() == [0, 0, 1, 1]
    fresh = ViewCache(bb, files, FeatureStore(tmp_path / "store", bb.identity))
    fresh.prepare(range(4), names)  # 4 hits on disk, 4 new views
    assert (fresh.cache_hits, fresh.computed, bb.clips_encoded) == (4, 4, 8)
    assert torch.equal(fresh.views([2], names).features.clip, views.features.clip[:2])


def test_view_cache_leaves_out_a_bad_clip_with_a_reason(tmp_path, write_wav):
    files = make_files(write_wav, n=2) + [tmp_path / "missing.wav"]
    cache = ViewCache(CountingBackbone(), files)
    views = cache.views([0, 1, 2], ("noise",))
    assert views.source.tolist() == [0, 1]
    assert list(cache.errors) == [2] and "missing.wav" in cache.errors[2]
    assert cache.views([2], ("noise",)) is None
