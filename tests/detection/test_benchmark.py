"""The detection benchmark: support spans, sed_eval's metric, the soundscape builder, one run."""

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from mgcl.data.soundscapes import PlacedEvent
from mgcl.detection.benchmark import (
    FORWARDED,
    Recording,
    SoundscapeSpec,
    Support,
    boundary_shift,
    build_soundscapes,
    markdown,
    pooled_support,
    run_benchmark,
    sed_metrics,
    shifted,
    support_spans,
    window_thresholds,
)
from mgcl.detection.detect import DetectOptions
from mgcl.detection.scores import pool_windows
from mgcl.errors import MgclError

from .conftest import SR, TARGET

pytest.importorskip("sed_eval", reason="sed_eval (the dev extra) measures detection F1")


def rec(events):
    return Recording("r.wav", None, "dog", 0, [PlacedEvent(a, b, lab) for a, b, lab in events])


def test_support_spans_take_the_first_k_targets_and_the_gaps_between():
    r = rec([(5.0, 6.0, "dog"), (7.0, 7.5, "car"), (10.0, 11.0, "dog"), (20.0, 21.0, "dog")])
    s = support_spans(r, 2, negative_seconds=2.0, negatives_per_positive=None)
    assert s.positives == [(5.0, 6.0), (10.0, 11.0)] and s.end == 11.0
    # gaps [0, 4.8] and [6.2, 9.8] in 2 s pieces (a piece of at least 1 s is kept); the car is a negative
    assert s.negatives == [(0.0, 2.0), (2.0, 4.0), (6.2, 8.2), (8.2, 9.8)]
    capped = support_spans(r, 2, negative_seconds=2.0, negatives_per_positive=1.0)
    assert capped.negatives == [(0.0, 2.0), (8.2, 9.8)]
    with pytest.raises(Exception, match="need more than 3"):
        support_spans(r, 3, 1.0)


def test_pooled_support_at_the_grain_of_the_queries():
    torch = pytest.importorskip("torch")
    frames = torch.nn.functional.normalize(torch.randn(20, 8), dim=1)
    centres = np.arange(20) * 0.5 + 0.25  # a frame every 0.5 s
    sup = Support(positives=[(2.0, 3.5)], negatives=[(0.0, 1.0), (5.0, 6.0)], end=3.5)
    events, labels = pooled_support(frames, centres, sup, 0.5, "max")
    assert labels == ["target", "background", "background"] and events.frames.shape[:2] == (3, 3)
    windows, labels = pooled_support(frames, centres, sup, 0.5, "max", width=3)
    # one clip per frame centred in a span: frames 4, 5, 6 | 0, 1 | 10, 11
    assert labels == ["target"] * 3 + ["background"] * 4
    queries = pool_windows(frames, [t - 1 for t in (4, 5, 6, 0, 1, 10, 11)], 3, 0.5, "max")
    assert torch.equal(windows.clip, queries.clip)  # exactly the windows the recording is scored with
    assert torch.equal(windows.frame_mask.sum(1), torch.tensor([3, 3, 3, 2, 3, 3, 3]))
    every_other, _ = pooled_support(frames, centres, sup, 0.5, "max", width=3, hop=2)
    assert torch.equal(every_other.clip, queries.clip[[0, 2, 3, 5]])


def test_sed_metrics_use_a_200_ms_collar():
    ref = [{"filename": "a.wav", "onset": 1.0, "offset": 2.0, "event_label": "dog"}]
    near = [{"filename": "a.wav", "onset": 1.1, "offset": 2.1, "event_label": "dog"}]
    far = [{"filename": "a.wav", "onset": 1.35, "offset": 2.35, "event_label": "dog"}]
    assert sed_metrics(ref, near, ["dog"])["f1"] == 100.0
    m = sed_metrics(ref, far, ["dog"])
    assert m["f1"] == 0.0 and m["onset_f1"] == 0.0 and m["wide_f1"] == 100.0
    assert sed_metrics(ref, [], ["dog"])["recall"] == 0.0


def test_build_soundscapes_places_trimmed_clips_without_overlap(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for lab in ("dog", "car", "air_conditioner"):
        for i in range(5):
            x = 0.01 * rng.standard_normal(2 * SR)
            x[SR // 2 : SR] += np.sin(np.arange(SR // 2) * 0.1 * (1 + i))  # sounds from 0.5 s to 1 s
            p = tmp_path / "clips" / f"{lab}{i}.wav"
            p.parent.mkdir(exist_ok=True)
            sf.write(p, x.astype(np.float32), SR)
            rows.append(SimpleNamespace(path=p, label=lab))
    spec = SoundscapeSpec(
        duration=30.0, n_target=4, n_distractors=2, sample_rate=SR, background_classes=("air_conditioner",)
    )
    recs = build_soundscapes(rows, tmp_path / "sc", [0], spec, ["dog"])
    assert [r.name for r in recs] == ["seed0_dog.wav"]
    ev = sorted(recs[0].events, key=lambda e: e.onset)
    assert sum(e.label == "dog" for e in ev) == 4 and sum(e.label == "car" for e in ev) == 2
    assert all(abs((e.offset - e.onset) - 0.5) < 0.06 for e in ev)  # trimmed to where the clip sounds
    assert all(a.offset + spec.min_gap <= b.onset + 1e-6 for a, b in zip(ev, ev[1:]))
    assert ev[0].onset >= spec.lead and ev[-1].offset <= 30.0
    assert sf.info(str(recs[0].path)).duration == 30.0
    stamp = recs[0].path.stat().st_mtime_ns
    again = build_soundscapes(rows, tmp_path / "sc", [0], spec, ["dog"])  # same spec: reused
    assert again[0].path.stat().st_mtime_ns == stamp and again[0].events == recs[0].events


def test_run_benchmark_on_a_synthetic_recording(detection_case):
    bb = detection_case["clf"].get_backbone()
    r = Recording("rec.wav", detection_case["recording"], TARGET, 0, list(detection_case["events"]))
    methods = ("prototype", "mgcl", "prototype_forwarded")
    bench = run_benchmark(bb, [r], shots=(1,), methods=methods, options=DetectOptions())
    rows = {x["method"]: x for x in bench.doc["results"]}
    assert bench.doc["options"]["support_grain"] == "window"
    assert bench.doc["options"]["negatives_per_positive"] == {"prototype": 2.0, "mgcl": None, FORWARDED: 2.0}
    assert set(rows) == set(methods) and bench.doc["timing"]["baseline_windows_s"] > 0
    assert all(x["n_reference"] == 3 for x in rows.values())  # 4 sirens, the first is the support
    assert all(rows[m]["wide_f1_mean"] >= 50.0 for m in ("prototype", "mgcl")), rows
    assert bench.doc["protocol"] == "detection" and "f1_std" in rows["mgcl"]
    diff = rows["mgcl"]["f1_mean"] - rows["prototype"]["f1_mean"]  # one seed: the paired difference
    assert rows["mgcl"]["f1_vs_baseline_mean"] == pytest.approx(diff, abs=0.011)
    assert rows["mgcl"]["seeds_above_baseline"] == int(diff > 0) and "f1_vs_baseline_mean" not in rows["prototype"]
    assert "paired by seed" in markdown(bench.doc)


def test_scores_cache_refits_nothing_and_postprocess_is_per_method(detection_case, monkeypatch):
    import mgcl.detection.benchmark as bench_mod

    bb = detection_case["clf"].get_backbone()
    r = Recording("rec.wav", detection_case["recording"], TARGET, 0, list(detection_case["events"]))
    frames, scores = {}, {}
    kw = dict(shots=(1,), methods=("prototype", "mgcl"), options=DetectOptions(), frames_cache=frames)
    first = run_benchmark(bb, [r], scores_cache=scores, postprocess={}, **kw)
    assert len(scores) == 2  # one fit per (recording, K, method)

    def no_fit(*args, **kwargs):
        raise AssertionError("a cached run fitted a method again")

    monkeypatch.setattr(bench_mod, "_fit_and_score", no_fit)
    again = run_benchmark(bb, [r], scores_cache=scores, postprocess={}, **kw)
    assert again.doc["results"] == first.doc["results"] and again.events == first.events
    # mgcl drops every event shorter than the recording: none left; the prototype unchanged
    post = {"mgcl": {"min_duration": 1000.0, "median": 0.0}}
    other = run_benchmark(bb, [r], scores_cache=scores, postprocess=post, **kw)
    rows = {x["method"]: x for x in other.doc["results"]}
    assert rows["mgcl"]["n_estimated"] == 0 and rows["prototype"] == first.doc["results"][0]
    assert other.doc["options"]["postprocess"] == {"prototype": {}, "mgcl": post["mgcl"]}
    with pytest.raises(MgclError, match="window"):
        bench_mod.method_postprocess(DetectOptions(), {"window": 1.0})
    with pytest.raises(MgclError, match="low ratio"):
        bench_mod.method_postprocess(DetectOptions(), {"low_ratio": 0.0})
    with pytest.raises(MgclError, match="split_factor"):
        bench_mod.method_postprocess(DetectOptions(), {"split_factor": 0.0})


def test_split_factor_is_relative_to_the_longest_support_event():
    import mgcl.detection.benchmark as bench_mod

    sup = bench_mod.Support([(1.0, 2.0), (5.0, 7.5)], [], 7.5)
    post = {"split_factor": 1.5, "split_ratio": 0.6, "low_ratio": 0.5}
    base = bench_mod.method_postprocess(DetectOptions(), post)
    assert base.split_longer is None and base.split_ratio == 0.6 and base.low_ratio == 0.5
    opts = bench_mod.recording_options(base, post, sup)
    assert opts.split_longer == pytest.approx(3.75) and opts.split_ratio == 0.6  # 1.5 x 2.5 s
    assert bench_mod.recording_options(base, {"low_ratio": 0.5}, sup) is base


def test_boundary_shift_is_measured_on_the_support_events():
    truth = [(5.0, 6.0), (10.0, 11.0), (20.0, 21.0)]
    found = [(4.7, 6.1), (9.6, 11.1), (30.0, 31.0)]  # early by 0.3 and 0.4 s, late by 0.1 s
    on, off = boundary_shift(found, truth)
    assert on == pytest.approx(0.35) and off == pytest.approx(-0.1)
    assert boundary_shift([(50.0, 51.0)], truth) == (0.0, 0.0)
    assert boundary_shift([(0.0, 5.5)], [(4.0, 5.0)], limit=1.0) == (1.0, -0.5)
    assert shifted([(4.7, 6.1), (0.1, 0.2)], (0.35, -0.1), 6.0) == [(5.05, 6.0), (0.15, 0.15)]


def test_window_thresholds_split_the_support_windows():
    from mgcl.detection.benchmark import Support

    centres = np.arange(10) + 0.5
    probs = np.stack([1 - np.linspace(0, 1, 10), np.linspace(0, 1, 10)], axis=1)
    sup = Support(positives=[(8.0, 10.0)], negatives=[(0.0, 2.0)], end=10.0)
    high = window_thresholds(probs, centres, sup, ["background", "target"])
    # target windows 8.5, 9.5 -> median 0.944; negatives 0.5, 1.5 -> 0.056
    assert high[0] == 0.5 and high[1] == pytest.approx(0.5)
