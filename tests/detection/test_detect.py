"""Detection end to end on a synthetic long recording: events found at their known times,
streaming equal to one pass, unknown/background never reported."""

import numpy as np
import torch

from mgcl.detection.detect import DetectOptions, detect, ignored_labels, model_scorer, reject_unknown
from mgcl.detection.frames import stream_frames
from mgcl.detection.scores import pool_windows, score_stream, window_frames
from mgcl.detection.thresholds import support_thresholds
from mgcl.pipeline import detection_thresholds, embed, feature_store
from mgcl.store.features import ViewCache

from .conftest import SR, TARGET

COLLAR = 0.5  # seconds: onset and offset within half a second (2-3 aisfx frames)


def matched(ref, est, collar):
    """Greedy one-to-one match of (onset, offset) pairs with both ends within the collar."""
    free = list(est)
    hits = 0
    for on, off in ref:
        for e in free:
            if abs(e[0] - on) <= collar and abs(e[1] - off) <= collar:
                free.remove(e)
                hits += 1
                break
    return hits, len(free)


def test_events_are_found_at_their_known_times(detection_case):
    clf = detection_case["clf"]
    high, how = detection_thresholds(clf, detection_case["root"] / "store")
    assert how.startswith("half-way") and high.shape == (3,) and np.all((high > 0.3) & (high < 0.9))
    det = detect(
        clf.get_backbone(), model_scorer(clf), clf.classes_, str(detection_case["recording"]), support_high=high
    )
    ref = [(e.onset, e.offset) for e in detection_case["events"] if e.label == TARGET]
    est = [(e.onset, e.offset) for e in det.events if e.event_label == TARGET]
    hits, extra = matched(ref, est, COLLAR)
    assert hits == len(ref), (ref, est)
    assert extra == 0, (ref, est)
    assert all(e.event_label != "background" for e in det.events)
    assert det.curve.scores.shape == (len(det.curve.times), len(clf.classes_))
    assert abs(det.curve.duration - 40.0) < 1e-6


def test_detection_thresholds_fit_the_held_out_clones_with_the_support_views(detection_case):
    clf = detection_case["clf"]
    store = detection_case["root"] / "store"
    assert clf.method_.view_names()  # mgcl trains on audio views of its support clips
    bb = clf.get_backbone()
    names = clf.support_names_
    feats = embed(bb, names, store).stacked()
    views = ViewCache(bb, names, feature_store(bb, store), 16).views(range(len(names)), clf.method_.view_names())
    codes = [clf.classes_.index(lab) for lab in clf.support_labels_]
    args = (clf.method_, feats, codes, len(clf.classes_), clf.temperature_)
    high, _ = detection_thresholds(clf, store)
    np.testing.assert_allclose(high, support_thresholds(*args, views=views)[0], atol=1e-6)  # threads differ
    assert np.abs(high - support_thresholds(*args)[0]).max() > 1e-3  # the clones without views differ


def test_streamed_scores_equal_one_pass_scores(detection_case):
    clf = detection_case["clf"]
    bb = clf.get_backbone()
    wave = detection_case["wave"][: 12 * SR]
    # one pass: the whole clip through encode_audio, every window pooled from its frames
    from mgcl.audio.decode import resample

    feats = bb.encode_audio([resample(wave, SR, bb.sample_rate)])
    frames = feats.frames[0][feats.frame_mask[0]]
    width = window_frames(1.0, bb.frame_step)
    starts = [t - width // 2 for t in range(len(frames))]
    one = clf.predict_proba_features(pool_windows(frames, starts, width, bb.frame_step))
    # streamed: 1.3 s blocks, windows scored as frames arrive, 7 windows per batch
    pieces = list(stream_frames(bb, (wave, SR), block_seconds=1.3))
    assert (torch.cat([f for f, _ in pieces]) - frames).abs().max() < 1e-6  # the same frames
    _, streamed = score_stream(iter(pieces), clf.predict_proba_features, width, 1, bb.frame_step, batch=7)
    assert streamed.shape == one.shape
    assert np.abs(streamed - one).max() < 1e-5


def test_chunked_fallback_gives_the_backbones_frames(counting_backbone):
    """A backbone without a streaming hook is run chunk by chunk: with chunks on its frame
    grid, the frames are exactly those of one call on the whole recording."""
    x = np.random.default_rng(0).standard_normal(8000 * 7).astype(np.float32)
    one = counting_backbone.encode_audio([x])
    pieces = list(stream_frames(counting_backbone, (x, 8000), block_seconds=0.7, chunk_seconds=2.0))
    frames = torch.cat([f for f, _ in pieces])
    spans = np.concatenate([s for _, s in pieces])
    assert len(pieces) == 4 and counting_backbone.calls == 5
    assert torch.allclose(frames, one.frames[0][one.frame_mask[0]])
    assert np.allclose(spans[:, 0], np.arange(len(frames)) * 0.25)


def test_unknown_and_rejected_windows_are_never_events(detection_case):
    clf = detection_case["clf"]
    bb = clf.get_backbone()
    src = (detection_case["wave"][: 21 * SR], SR)  # holds two sirens
    opts = DetectOptions(threshold=0.45)
    assert {e.event_label for e in detect(bb, model_scorer(clf), clf.classes_, src, opts).events} == {TARGET}
    clf.unknown_label = TARGET  # a model whose unknown label is one of its columns: never reported
    try:
        assert ignored_labels(clf) == ("background", TARGET)
        assert detect(bb, model_scorer(clf), clf.classes_, src, opts, ignore=ignored_labels(clf)).events == []
        clf.reject_threshold_ = 1.01  # every window rejected as unknown: no event of any class
        assert reject_unknown(clf, np.array([[0.2, 0.8]])).tolist() == [[0.0, 0.0]]
        assert detect(bb, model_scorer(clf), clf.classes_, src, opts).events == []
    finally:
        del clf.unknown_label
        if hasattr(clf, "reject_threshold_"):
            del clf.reject_threshold_
