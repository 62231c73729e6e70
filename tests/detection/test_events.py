"""Post-processing of score curves, on hand-made curves with answers worked out by hand."""

import json

import numpy as np
import pytest

from mgcl.detection.events import (
    Event,
    class_events,
    drop_short,
    events_from_curve,
    hysteresis,
    median_smooth,
    merge_close,
    render_csv,
    render_json,
    split_long,
)


def test_hysteresis_keeps_runs_above_low_that_reach_high():
    x = np.array([0.0, 0.4, 0.8, 0.45, 0.5, 0.1, 0.45, 0.45, 0.0, 0.9])
    # run [1, 5) reaches 0.8; run [6, 8) never reaches high; [9, 10) does
    assert hysteresis(x, high=0.7, low=0.4) == [(1, 5), (9, 10)]
    assert hysteresis(x, high=0.95, low=0.4) == []
    with pytest.raises(ValueError):
        hysteresis(x, high=0.3, low=0.5)


def test_median_smooth_removes_single_sample_spikes_and_keeps_plateaus():
    x = np.array([[0, 0, 1, 0, 0, 1, 1, 1, 0, 0]], dtype=np.float32).T
    y = median_smooth(x, 3)[:, 0]
    assert y.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert median_smooth(x, 1) is not None and np.array_equal(median_smooth(x, 1), x)
    assert median_smooth(x, 2).shape == x.shape  # even sizes become odd


def test_merge_and_min_duration():
    spans = [(5.0, 6.0), (0.0, 1.0), (1.2, 2.0), (6.5, 6.6)]
    assert merge_close(spans, 0.3) == [(0.0, 2.0), (5.0, 6.0), (6.5, 6.6)]
    assert merge_close(spans, 0.6) == [(0.0, 2.0), (5.0, 6.6)]
    assert drop_short([(0.0, 2.0), (6.5, 6.6)], 0.2) == [(0.0, 2.0)]


def test_class_events_times_are_sample_edges_clipped_to_the_recording():
    times = np.arange(10) * 0.5 + 0.25  # samples cover [0, 0.5), [0.5, 1.0), ...
    curve = np.array([0, 0, 0.9, 0.9, 0.5, 0, 0, 0, 0.8, 0.8])
    ev = class_events(times, 0.5, curve, high=0.7, low=0.4, duration=4.9)
    assert ev == [(1.0, 2.5, 0.9), (4.0, 4.9, 0.8)]
    assert class_events(times, 0.5, curve, 0.7, 0.4, min_duration=1.0, duration=4.9) == [(1.0, 2.5, 0.9)]
    assert class_events(times, 0.5, curve, 0.7, 0.4, merge_gap=2.0, duration=4.9) == [(1.0, 4.9, 0.9)]


def test_ignored_labels_never_become_events_and_output_formats():
    times = np.arange(6) * 1.0 + 0.5
    scores = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1], [0.9, 0.1]], dtype=np.float32)
    ev = events_from_curve(
        "a.wav", times, 1.0, scores, ["background", "dog"], [0.5, 0.5], [0.35, 0.35], ignore=("background",)
    )
    assert ev == [Event("a.wav", 2.0, 4.0, "dog", 0.9)]
    rows = render_csv(ev).decode().splitlines()
    assert rows == ["filename,onset,offset,event_label,score", "a.wav,2.000,4.000,dog,0.9000"]
    doc = json.loads(render_json(ev, {"classes": ["background", "dog"]}))
    assert doc["events"][0]["event_label"] == "dog" and doc["classes"] == ["background", "dog"]


def test_split_long_recuts_only_over_long_events_at_a_fraction_of_their_peak():
    # two events (0.9) joined by a score that hovers at 0.5 over the background between them
    times = np.arange(12) * 1.0 + 0.5
    curve = np.array([0.0, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.95, 0.0, 0.0, 0.8, 0.0])
    assert class_events(times, 1.0, curve, 0.7, 0.4) == [(1.0, 8.0, 0.95), (10.0, 11.0, 0.8)]
    # 0.7 x 0.95 = 0.665: the 7 s event falls apart into its two peaks; the 1 s event is kept
    pieces = class_events(times, 1.0, curve, 0.7, 0.4, split_longer=2.0, split_ratio=0.7)
    assert pieces == [(1.0, 3.0, 0.9), (7.0, 8.0, 0.95), (10.0, 11.0, 0.8)]
    # not longer than split_longer: unchanged; a low ratio keeps the whole event
    assert class_events(times, 1.0, curve, 0.7, 0.4, split_longer=7.0) == class_events(times, 1.0, curve, 0.7, 0.4)
    assert split_long(times, 1.0, curve, [(1.0, 8.0)], 2.0, 0.5) == [(1.0, 8.0)]
    # the pieces are merged and dropped like any event
    assert class_events(times, 1.0, curve, 0.7, 0.4, min_duration=1.5, split_longer=2.0) == [(1.0, 3.0, 0.9)]
    assert class_events(times, 1.0, curve, 0.7, 0.4, merge_gap=5.0, split_longer=2.0)[0] == (1.0, 11.0, 0.95)
