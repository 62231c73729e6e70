"""Why did the model say that? One clip -> one picture (``mgcl explain``).

:func:`explain_clip` runs a fitted :class:`~mgcl.classifier.FewShotAudioClassifier` on one
clip and collects everything a person needs to judge the decision:

* the clip's log-mel spectrogram (display only, time in seconds);
* the predicted class, its probability and the top-k alternatives;
* the **per-branch contributions** to the logits of the winner and of the runner-up
  (mgcl: ``α_b z_b / σ_b`` of each branch zs, cc, fc, ft, gc; mgcl_f: its trained branches
  lin, cc, fp, zs, ft, gc; any other method: one "total" bar). They sum to the logit;
* the **optimal-transport plan** between the clip's frames and the winning class's
  *concepts*, i.e. which moments matched what:

  ======================  =====================================================  ==============
  backbone / method       concepts (rows)                                        frame marginal
  ======================  =====================================================  ==============
  text tower (CLAP)       the class prompt + its LLM descriptions (the fine-      uniform
                          text branch's set ``concepts_``, or built from the
                          backbone for methods that have none)
  audio-only, mgcl_f      the class's learned frame prototypes                    saliency
                          ``params_["frame_protos"]`` (the ``fp`` branch)
  audio-only, mgcl        the segments (max-pooled windows of frames) of the     saliency
                          class's support clip that match best by OT (the fine-
                          cache branch); the columns are the clip's segments
  ======================  =====================================================  ==============

  computed with :func:`mgcl.ot.ot_sim` (``return_plan=True``), the method's ε and the
  same marginals the branch uses, so the picture shows what the model computed.

:func:`render` draws it (plan on top, spectrogram below on the same time axis, branch
bars on the side) and writes a PNG atomically. :func:`frame_times` / :func:`frame_spans`
give the time span of every real frame of a backbone.

Nothing here changes a model: it reads the fitted method's attributes.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mgcl.backbones.base import AudioFeatures, l2_normalize
from mgcl.errors import MgclError

#: Readable names of the branches (mgcl / mgcl_f); unknown names are shown as they are.
BRANCH_NAMES = {
    "zs": "zero-shot text (zs)",
    "cc": "coarse cache (cc)",
    "fc": "fine cache, OT (fc)",
    "ft": "fine text, OT (ft)",
    "gc": "caption cache (gc)",
    "lin": "linear head (lin)",
    "fp": "frame prototypes, OT (fp)",
    "total": "logit (whole method)",
}
CONCEPT_CHOICES = ("auto", "text", "audio")
#: The mgcl branch that matches frames to each kind of concept.
CONCEPT_BRANCH = {"descriptions": "ft", "frame prototypes": "fp", "support frames": "fc", "support segments": "fc"}
#: Characters of a concept label on the figure (the JSON keeps the whole sentence).
LABEL_CHARS = 46


# ----------------------------------------------------------------------------- result
@dataclass
class Explanation:
    """Everything :func:`render` draws, and the JSON summary (:meth:`to_dict`).

    Arrays: ``waveform`` (n,) at ``sample_rate``; ``spectrogram`` (n_mels, S) in dB with
    ``spec_times`` (S,) and ``spec_freqs`` (n_mels,) band centres in Hz; ``frame_spans``
    (T, 2) start/end seconds of the plan's T columns (the real frames, or the segments of
    frames the fine cache of training-free mgcl matches), ``frame_times`` (T,) their centres;
    ``probabilities`` / ``logits`` (C,) in ``classes`` order; ``contributions``
    {branch: (C,)} summing to ``logits``; ``plan`` (M, T) the transport plan between the
    M concepts (rows, ``concept_labels``) and the T frames, ``row_marginal`` (M,) and
    ``col_marginal`` (T,) its marginals, ``plan_similarity`` (M, T) the cosines it
    transported over; ``plan`` is None when the model has no concepts to show.
    """

    source: str
    method: str
    backbone: str
    sample_rate: int
    waveform: np.ndarray
    spectrogram: np.ndarray
    spec_times: np.ndarray
    spec_freqs: np.ndarray
    frame_spans: np.ndarray
    classes: list[str]
    probabilities: np.ndarray
    logits: np.ndarray
    contributions: dict[str, np.ndarray]
    top_k: list[tuple[str, float]]
    plan: np.ndarray | None = None
    plan_similarity: np.ndarray | None = None
    row_marginal: np.ndarray | None = None
    col_marginal: np.ndarray | None = None
    concept_labels: list[str] = field(default_factory=list)
    concept_kind: str = ""
    concept_note: str = ""
    eps: float | None = None
    concept_branch: str | None = None
    branch_off: bool = False

    # ------------------------------------------------------------------ derived
    @property
    def duration(self) -> float:
        return len(self.waveform) / float(self.sample_rate)

    @property
    def frame_times(self) -> np.ndarray:
        return self.frame_spans.mean(axis=1)

    @property
    def winner(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def runner_up(self) -> int | None:
        if len(self.classes) < 2:
            return None
        order = np.argsort(-self.probabilities, kind="stable")
        return int(order[1])

    @property
    def predicted(self) -> str:
        return self.classes[self.winner]

    def branch_table(self) -> list[dict]:
        """Per branch: its contribution to the winner's and the runner-up's logit."""
        w, r = self.winner, self.runner_up
        return [
            {"branch": b, "name": BRANCH_NAMES.get(b, b), "winner": float(v[w]),
             "runner_up": None if r is None else float(v[r])}
            for b, v in self.contributions.items()
        ]

    def top_matches(self, k: int = 5) -> list[dict]:
        """The ``k`` heaviest entries of the plan: which moment matched which concept.

        Each: ``time`` (frame centre, s), ``start``/``end`` (s), ``concept`` (its label),
        ``mass`` (transport mass), ``similarity`` (cosine between frame and concept).
        """
        if self.plan is None or self.plan.size == 0:
            return []
        flat = np.argsort(-self.plan, axis=None, kind="stable")[: max(0, int(k))]
        out = []
        for idx in flat:
            i, j = np.unravel_index(idx, self.plan.shape)
            out.append({
                "time": round(float(self.frame_times[j]), 3),
                "start": round(float(self.frame_spans[j, 0]), 3),
                "end": round(float(self.frame_spans[j, 1]), 3),
                "concept": self.concept_labels[i],
                "mass": float(self.plan[i, j]),
                "similarity": None if self.plan_similarity is None else float(self.plan_similarity[i, j]),
            })
        return out

    def to_dict(self, n_matches: int = 5) -> dict:
        """JSON-able summary: prediction, probabilities, branch contributions, top matches."""
        r = self.runner_up
        return {
            "file": self.source,
            "method": self.method,
            "backbone": self.backbone,
            "duration": round(self.duration, 3),
            "predicted": self.predicted,
            "probability": float(self.probabilities[self.winner]),
            "runner_up": None if r is None else self.classes[r],
            "top_k": [{"label": c, "probability": float(p)} for c, p in self.top_k],
            "logits": {"winner": float(self.logits[self.winner]),
                       "runner_up": None if r is None else float(self.logits[r])},
            "contributions": self.branch_table(),
            "concepts": {
                "kind": self.concept_kind,
                "class": self.predicted,
                "labels": list(self.concept_labels),
                "note": self.concept_note,
                "branch": self.concept_branch,
                "branch_off": self.branch_off,
                "eps": self.eps,
            },
            "frames": {"count": len(self.frame_spans),
                       "times": [round(float(t), 3) for t in self.frame_times]},
            "top_matches": self.top_matches(n_matches),
        }


# ----------------------------------------------------------------------------- frame times
def frame_spans(backbone, n_samples: int, n_frames: int | None = None) -> np.ndarray:
    """Start and end (seconds) of each real frame of a clip of ``n_samples`` samples at the
    backbone's rate: (T, 2), clipped to [0, duration], starts increasing.

    The backbone's own ``frame_spans(n_samples, n_frames)`` when it has one (aisfx: its block
    layout, ~5.4 frames/s; CLAP: W/Tw per frame, 10 s / 32 for the released models); else,
    or when its layout disagrees with the ``n_frames`` real frames of the features, the
    frames spread evenly over the clip.
    """
    duration = n_samples / float(backbone.sample_rate)
    spans = None
    if callable(getattr(backbone, "frame_spans", None)):
        spans = np.asarray(backbone.frame_spans(n_samples, n_frames), dtype=np.float64).reshape(-1, 2)
    if spans is None or (n_frames is not None and len(spans) != n_frames):
        t = int(n_frames if n_frames is not None else max(1, len(spans) if spans is not None else 1))
        edges = np.linspace(0.0, duration, t + 1)
        spans = np.stack([edges[:-1], edges[1:]], axis=1)
    return np.clip(spans, 0.0, duration)


def frame_times(backbone, n_samples: int, n_frames: int | None = None) -> np.ndarray:
    """Centre (seconds) of each real frame: (T,), increasing, inside [0, duration]."""
    return frame_spans(backbone, n_samples, n_frames).mean(axis=1)


def _frame_edges(spans: np.ndarray, duration: float) -> np.ndarray:
    """(T + 1,) cell edges for the heat map: midpoints between frame centres, 0 and the end."""
    centres = spans.mean(axis=1)
    if len(centres) == 0:
        return np.array([0.0, duration])
    mid = (centres[1:] + centres[:-1]) / 2.0
    first = min(spans[0, 0], centres[0])
    last = max(spans[-1, 1], centres[-1])
    return np.concatenate([[first], mid, [last]])


# ----------------------------------------------------------------------------- spectrogram
def log_mel_display(wave: np.ndarray, sample_rate: int, n_mels: int = 80, max_columns: int = 3000,
                    top_db: float = 80.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plain log-mel spectrogram for display: (n_mels, S) dB (max 0, floor -top_db), column
    centre times (S,) in seconds, band centre frequencies (n_mels,) in Hz.

    Window ~46 ms; the hop grows for long clips so that S <= ``max_columns``.
    """
    from mgcl.backbones.aisfx import hz_to_mel_htk, mel_filterbank, mel_to_hz_htk

    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    n_fft = 1 << max(8, round(math.log2(0.046 * sample_rate)))
    hop = max(n_fft // 4, math.ceil(len(x) / max_columns))
    if len(x) < n_fft:  # a very short clip: pad so one frame fits
        x = torch.nn.functional.pad(x, (0, n_fft - len(x)))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                      center=True, pad_mode="constant", return_complex=True)
    power = (spec.real.square() + spec.imag.square()).numpy()
    fb = mel_filterbank(int(sample_rate), n_fft, n_mels)
    mel = fb @ power
    db = 10.0 * np.log10(np.maximum(mel, 1e-12))
    db = np.maximum(db - db.max(), -top_db)
    times = np.arange(db.shape[1]) * hop / float(sample_rate)
    pts = mel_to_hz_htk(np.linspace(hz_to_mel_htk(0.0), hz_to_mel_htk(sample_rate / 2.0), n_mels + 2))
    return db.astype(np.float32), times, pts[1:-1]


# ----------------------------------------------------------------------------- contributions
def branch_contributions(method, query: AudioFeatures) -> dict[str, torch.Tensor]:
    """Each branch's additive share of the logits, {name: (Q, C)}, summing to ``logits``.

    mgcl: ``α_b z_b / σ_b`` (``branch_logits``); mgcl_f: ``α_b z_b / σ_b`` over its trained
    branches with the fine-tuned state ``params_``; any other method: {"total": logits}.
    """
    from mgcl.methods.mgcl import MGCL

    with torch.no_grad():
        if isinstance(method, MGCL):  # MGCLF overrides branch_logits with its trained branches
            return method.branch_logits(query)
        return {"total": method.logits(query)}


# ----------------------------------------------------------------------------- concepts
@dataclass
class _Concepts:
    """One class's concept set and how the OT branch matches frames to it."""

    kind: str
    vectors: torch.Tensor  # (M, D), the concept side
    labels: list[str]
    frames: torch.Tensor  # (T, D), the query side as the branch sees it
    frame_weights: torch.Tensor | None  # (T,) marginal over frames, None = uniform
    concept_weights: torch.Tensor | None  # (M,) marginal over concepts, None = uniform
    note: str = ""
    segment: tuple[int, int] | None = None  # the query side is (window, hop) segments of frames


def _short(text: str, n: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _class_sentences(classifier, label: str) -> list[str] | None:
    """The class's description sentences from the classifier's ``descriptions`` (or None)."""
    from mgcl.concepts.prompts import readable_label

    desc = getattr(classifier, "descriptions", None) or {}
    if not isinstance(desc, dict):
        return None
    found = desc.get(label)
    if found is None:
        found = desc.get(readable_label(label))
    return None if found is None else [str(s) for s in found]


def _text_labels(classifier, label: str, m: int) -> tuple[list[str], str]:
    """Row labels of a class's text concepts: the prompt, then its descriptions."""
    from mgcl.concepts.prompts import TEMPLATES, readable_label

    prompt = f'prompt: "{TEMPLATES[0].format(readable_label(label))}"'
    sentences = _class_sentences(classifier, label)
    if sentences is not None and len(sentences) == m - 1:
        return [prompt] + sentences, ""
    note = ("description sentences not stored with the model" if sentences is None
            else f"{len(sentences)} stored descriptions for {m - 1} embedded ones")
    return [prompt] + [f"description {i}" for i in range(1, m)], note


def _query_frames(query: AudioFeatures) -> torch.Tensor:
    return query.frames[0][query.frame_mask[0]]


def _text_concepts(classifier, method, query: AudioFeatures, c: int) -> _Concepts | None:
    """The class's prompt + descriptions, matched to the raw frames with uniform marginals."""
    label = classifier.classes_[c]
    if getattr(method, "concepts_", None) is not None and getattr(method, "concept_mask_", None) is not None:
        vectors = method.concepts_[c][method.concept_mask_[c]]
    else:
        bb = classifier.get_backbone()
        if not getattr(bb, "has_text", False):
            return None
        from mgcl.concepts.prompts import class_text_features

        text = class_text_features(bb, [label], classifier.descriptions)
        vectors = torch.cat([text.prompts, text.descriptions[0]]) if text.descriptions else text.prompts
    if len(vectors) == 0:
        return None
    labels, note = _text_labels(classifier, label, len(vectors))
    return _Concepts("descriptions", vectors, labels, _query_frames(query), None, None, note)


def _prototype_concepts(method, query: AudioFeatures, c: int) -> _Concepts | None:
    """mgcl_f: the class's learned frame prototypes vs the centred frames (saliency marginal)."""
    from mgcl.methods.mgcl import MGCLF

    if not (isinstance(method, MGCLF) and "fp" in method._trained_branches()
            and "frame_protos" in getattr(method, "params_", {})):
        return None
    v = method._view(query)
    mask = v.mask[0]
    protos = l2_normalize(method.params_["frame_protos"][c])
    labels = [f"prototype {i + 1}" for i in range(len(protos))]
    return _Concepts("frame prototypes", protos, labels, v.cframes[0][mask], v.weights[0][mask], None,
                     "learned frame prototypes of the class (mgcl_f), matched to centred frames")


def _support_concepts(classifier, method, query: AudioFeatures, c: int) -> _Concepts | None:
    """Training-free mgcl: the fine-cache rows (segments, or frames) of the class's support
    clip that match best by OT."""
    if getattr(method, "frame_keys_", None) is None or getattr(method, "values_", None) is None:
        return None
    fq, mq, wq = method._frames(query)
    fq, wq = fq[0][mq[0]], wq[0][mq[0]]
    source = getattr(method, "key_source_", None)  # keys: the N clips, then their views
    n_clips = len(method.values_) if source is None else int(source.max()) + 1
    idx = (method.values_[:n_clips, c] > 0).nonzero().flatten()
    if len(idx) == 0 or len(fq) == 0:
        return None
    keys, kmask, kw = method.frame_keys_[idx], method.frame_key_mask_[idx], method.frame_key_w_[idx]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sims = ot_sim_batch(fq, wq, keys, kmask, kw, method.eps)
    best = int(torch.argmax(sims))
    rows = keys[best][kmask[best]]
    weights = kw[best][kmask[best]]
    n_support = int(idx[best])
    k_of_class = best + 1
    bb = classifier.get_backbone() if hasattr(classifier, "get_backbone") else None
    segment = getattr(method, "segment_frames_", None)
    unit = "segment" if segment else "frame"
    times = _nominal_times(bb, len(rows), segment)
    labels = [f"support {unit} {i + 1}" + (f" ({t:.2f} s)" if t is not None else "")
              for i, t in enumerate(times)]
    note = (f"{unit}s of support clip {k_of_class} of the class (support row {n_support}), "
            f"the best OT match of {len(idx)}")
    return _Concepts(f"support {unit}s", rows, labels, fq, wq, weights, note, segment)


def ot_sim_batch(fq, wq, keys, kmask, kw, eps: float) -> torch.Tensor:
    """OT similarity of one clip's frames (T, D) with each of N keys' frames (N, T', D)."""
    from mgcl.ot import ot_sim

    return ot_sim(fq[None], keys, None, kmask, a=wq[None], b=kw, eps=eps, tol=1e-4, n_iters=500)


def segment_spans(spans: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(T, 2) frame spans -> (S, 2) spans of the segments :func:`mgcl.methods.common.segments`
    makes of those T frames: from its first frame's start to its last frame's end."""
    from mgcl.methods.common import segment_starts

    t = len(spans)
    starts, real = segment_starts(torch.tensor([t]), window, hop)
    starts = starts[real[0]].numpy()
    if t == 0:
        return np.zeros((0, 2))
    ends = np.minimum(starts + window, t) - 1
    return np.stack([spans[starts, 0], spans[ends, 1]], axis=1)


def _nominal_times(backbone, n: int, segment: tuple[int, int] | None = None) -> list[float | None]:
    """Centre times of the first ``n`` frames (or ``segment`` segments) of a clip long
    enough to hold them."""
    if backbone is None:
        return [None] * n
    sr = int(getattr(backbone, "sample_rate", 0) or 0)
    if sr <= 0:
        return [None] * n
    need = n if segment is None else (n - 1) * segment[1] + segment[0]
    for seconds in (need, 2 * need, 8 * need + 20):  # any clip long enough (frames/s >= 1/8 here)
        spans = frame_spans(backbone, int(seconds * sr))
        if len(spans) >= need + 2:
            spans = spans[:need] if segment is None else segment_spans(spans[:need], *segment)
            return [float(t) for t in spans[:n].mean(axis=1)]
    return [None] * n


def _choose_concepts(classifier, method, query: AudioFeatures, c: int, which: str) -> _Concepts | None:
    """auto: text concepts when there are at least two (prompt + a description), else the
    audio ones (mgcl_f frame prototypes, or mgcl support frames), else whatever exists."""
    text = None
    if which in ("auto", "text"):
        text = _text_concepts(classifier, method, query, c)
        if which == "text":
            if text is None:
                raise MgclError(f"no text concepts: backbone '{classifier.backbone_name_}' has no text "
                                "tower (use concepts 'audio' or 'auto')")
            return text
        if text is not None and len(text.vectors) >= 2:
            return text
    audio = _prototype_concepts(method, query, c) or _support_concepts(classifier, method, query, c)
    if audio is None and which == "audio":
        raise MgclError(f"no audio concepts in this model: method '{classifier.method}' keeps neither "
                        "frame prototypes (mgcl_f) nor support frames (mgcl); use concepts 'text' or 'auto'")
    return audio if audio is not None else text


# ----------------------------------------------------------------------------- explain
def _source_label(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return "<waveform>"


def explain_clip(classifier, source, top_k: int = 3, concepts: str = "auto") -> Explanation:
    """Explain the classifier's decision on one clip (an audio path or ``(waveform, sr)``).

    ``concepts``: "auto" (text descriptions when the model has them, else audio concepts),
    "text" (the class's prompt + descriptions) or "audio" (frame prototypes / support
    frames). Raises MgclError (one line) for an unfitted model or an unusable clip.
    """
    from mgcl.features import load_source
    from mgcl.ot import ot_sim

    if concepts not in CONCEPT_CHOICES:
        raise MgclError(f"concepts must be one of {', '.join(CONCEPT_CHOICES)}, got '{concepts}'")
    if int(top_k) != top_k or top_k < 1:
        raise MgclError(f"top_k must be a positive integer, got {top_k}")
    classifier.check_fitted()
    backbone = classifier.get_backbone()
    wave = load_source(source, int(backbone.sample_rate))  # AudioError: one line, names the file
    query = classifier.embed([source], what="clips")
    method = classifier.method_

    with torch.no_grad():
        logits = method.logits(query)[0]
        contributions = {b: v[0].detach().float().cpu().numpy() for b, v in
                         branch_contributions(method, query).items()}
    proba = torch.softmax(logits, dim=0).cpu().numpy().astype(np.float64)
    logits = logits.detach().float().cpu().numpy()
    order = np.argsort(-proba, kind="stable")[: min(int(top_k), len(proba))]
    top = [(classifier.classes_[i], float(proba[i])) for i in order]

    n_real = int(query.frame_mask[0].sum())
    spans = frame_spans(backbone, len(wave), n_real)
    spec, spec_t, spec_f = log_mel_display(wave, int(backbone.sample_rate))

    expl = Explanation(
        source=_source_label(source), method=classifier.method, backbone=classifier.backbone_name_,
        sample_rate=int(backbone.sample_rate), waveform=wave, spectrogram=spec, spec_times=spec_t,
        spec_freqs=spec_f, frame_spans=spans, classes=list(classifier.classes_), probabilities=proba,
        logits=logits, contributions=contributions, top_k=top,
    )
    winner = int(np.argmax(proba))
    with torch.no_grad():
        chosen = _choose_concepts(classifier, method, query, winner, concepts) if n_real else None
    if chosen is None:
        expl.concept_note = ("no frame-level concepts in this model (method "
                             f"'{classifier.method}' on backbone '{classifier.backbone_name_}')")
        return expl
    if chosen.segment is not None:  # the plan's columns are segments of frames
        expl.frame_spans = segment_spans(spans, *chosen.segment)
    eps = float(getattr(method, "eps", 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with torch.no_grad():
            _, plan = ot_sim(chosen.frames.float(), chosen.vectors.float(), a=chosen.frame_weights,
                             b=chosen.concept_weights, eps=eps, return_plan=True)
    sim = chosen.frames.float() @ chosen.vectors.float().T  # (T, M)
    plan = plan.double().cpu().numpy().T  # (M, T)
    expl.plan = plan
    expl.plan_similarity = sim.double().cpu().numpy().T
    m, t = plan.shape
    expl.row_marginal = (np.full(m, 1.0 / m) if chosen.concept_weights is None
                         else _normalised(chosen.concept_weights))
    expl.col_marginal = (np.full(t, 1.0 / t) if chosen.frame_weights is None
                         else _normalised(chosen.frame_weights))
    expl.concept_labels = list(chosen.labels)
    expl.concept_kind = chosen.kind
    expl.concept_note = chosen.note
    expl.eps = eps
    branch = CONCEPT_BRANCH.get(chosen.kind)
    if "total" not in contributions and branch is not None:
        expl.concept_branch = branch
        values = contributions.get(branch)
        expl.branch_off = values is None or not bool(np.any(values != 0))
        if expl.branch_off:
            off = (f"branch {branch} has weight 0 in this model: the plan shows the match, "
                   "it did not move the decision")
            expl.concept_note = f"{expl.concept_note}; {off}" if expl.concept_note else off
    return expl


def _normalised(w: torch.Tensor) -> np.ndarray:
    w = w.double().cpu().numpy()
    return w / w.sum() if w.sum() > 0 else w


# ----------------------------------------------------------------------------- render
def plan_lift(plan: np.ndarray) -> tuple[np.ndarray, int]:
    """What the heat map shows: log2 of each row's share of its mass per frame relative to
    an even spread over the T frames (0 = even, +1 = twice as much, -1 = half), clipped to
    [-6, 6]; and a symmetric colour limit, at least 1 so a near-even plan stays pale.

    plan (M, T) -> (M, T), int
    """
    t = plan.shape[1]
    share = plan / np.maximum(plan.sum(axis=1, keepdims=True), 1e-30)
    lift = np.clip(np.log2(np.maximum(share * t, 2.0**-6)), -6.0, 6.0)
    limit = int(min(6, max(1, math.ceil(float(np.abs(lift).max()) - 1e-9))))
    return lift, limit


def _freq_ticks(freqs: np.ndarray) -> tuple[list[float], list[str]]:
    """Mel-band positions of round frequencies for the spectrogram's y axis."""
    pos, lab = [], []
    for f in (100, 250, 500, 1000, 2000, 4000, 8000, 16000):
        if freqs[0] <= f <= freqs[-1]:
            pos.append(float(np.interp(f, freqs, np.arange(len(freqs)))) + 0.5)
            lab.append(f"{f // 1000}k" if f >= 1000 else str(f))
    return pos, lab


def render(explanation: Explanation, out_png: str | os.PathLike, dpi: int = 110) -> Path:
    """Draw the explanation into one PNG (written atomically); returns its path.

    Left, top: the OT plan (rows: the winning class's concepts, columns: time, same axis
    as below; colour = each concept's share of its mass per frame). Left, bottom: the
    log-mel spectrogram. Right: the per-branch contributions to the winner's and the
    runner-up's logit. Title: file, predicted class and probability.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from mgcl.features import atomic_write_bytes

    e = explanation
    dur = max(e.duration, 1e-6)
    has_plan = e.plan is not None and e.plan.size > 0
    m = e.plan.shape[0] if has_plan else 0
    branches = e.branch_table()
    plan_h = (0.9 + 0.3 * min(m, 24)) if has_plan else 0.0
    spec_h = 2.4
    fig_h = max(4.6, 1.3 + plan_h + spec_h)
    label_w = 0.075 * max([len(_short(s)) for s in e.concept_labels] + [10]) if has_plan else 0.6
    fig_w = 9.5 + label_w + 4.2

    with rc_context({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10}):
        fig = Figure(figsize=(fig_w, fig_h), dpi=dpi, layout="constrained")
        fig.get_layout_engine().set(w_pad=0.06, h_pad=0.06, wspace=0.0, hspace=0.02)
        gs = fig.add_gridspec(2 if has_plan else 1, 2, width_ratios=[3.2, 1.0],
                              height_ratios=[plan_h, spec_h] if has_plan else [spec_h])
        ax_spec = fig.add_subplot(gs[1 if has_plan else 0, 0])
        ax_bar = fig.add_subplot(gs[:, 1])

        # spectrogram
        im = ax_spec.imshow(e.spectrogram, origin="lower", aspect="auto", cmap="magma",
                            extent=(0.0, dur, 0.0, e.spectrogram.shape[0]), interpolation="nearest")
        pos, lab = _freq_ticks(e.spec_freqs)
        ax_spec.set_yticks(pos, lab)
        ax_spec.set_ylabel("frequency (Hz, mel)")
        ax_spec.set_xlabel("time (s)")
        ax_spec.set_xlim(0.0, dur)
        cb = fig.colorbar(im, ax=ax_spec, pad=0.01, fraction=0.03, aspect=12)
        cb.set_label("dB")

        # plan
        if has_plan:
            ax_plan = fig.add_subplot(gs[0, 0], sharex=ax_spec)
            lift, limit = plan_lift(e.plan)
            edges = _frame_edges(e.frame_spans, dur)
            mesh = ax_plan.pcolormesh(edges, np.arange(m + 1), lift, cmap="RdBu_r", vmin=-limit,
                                      vmax=limit, shading="flat")
            step = max(1, math.ceil(m / 24))
            ticks = list(range(0, m, step))
            ax_plan.set_yticks([i + 0.5 for i in ticks], [_short(e.concept_labels[i]) for i in ticks])
            ax_plan.set_ylim(m, 0)  # first concept (the prompt) on top
            ax_plan.tick_params(axis="x", labelbottom=False)
            ax_plan.set_xlim(0.0, dur)
            what = {"descriptions": "prompt + descriptions", "frame prototypes": "learned frame prototypes",
                    "support frames": "frames of its closest support clip",
                    "support segments": "segments of its closest support clip"}.get(e.concept_kind, e.concept_kind)
            cols = "segments" if e.concept_kind == "support segments" else "frames"
            ax_plan.set_title(f"which moments matched '{e.predicted}': OT plan, {cols} x {what}"
                              + (f" (ε = {e.eps:g})" if e.eps is not None else "")
                              + (f"  [branch {e.concept_branch} off: α = 0]" if e.branch_off else ""),
                              loc="left")
            cb = fig.colorbar(mesh, ax=ax_plan, pad=0.01, fraction=0.03, aspect=12)
            ticks = np.arange(-limit, limit + 1, 1 if limit <= 3 else 2)
            cb.set_ticks(ticks, labels=[f"×{2 ** k}" if k >= 0 else f"×1/{2 ** -k}" for k in ticks])
            cb.set_label("mass vs. even spread")
        else:
            ax_spec.set_title(_short(e.concept_note or "no transport plan for this model", 110), loc="left",
                              fontsize=9, color="0.35")

        # branch bars
        _draw_bars(ax_bar, e, branches)

        p = e.probabilities[e.winner]
        r = e.runner_up
        sub = f"  ·  runner-up '{e.classes[r]}' p = {e.probabilities[r]:.2f}" if r is not None else ""
        fig.suptitle(f"{e.source}: predicted '{e.predicted}' (p = {p:.2f}){sub}\n"
                     f"method {e.method}, backbone {e.backbone}", fontsize=12, x=0.01, ha="left")

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    out = Path(out_png)
    atomic_write_bytes(out, buf.getvalue())
    return out


def _draw_bars(ax, e: Explanation, branches: Sequence[dict]) -> None:
    """Grouped horizontal bars: each branch's contribution to the winner vs the runner-up."""
    r = e.runner_up
    names = [b["name"] for b in branches]
    win = [b["winner"] for b in branches]
    run = [b["runner_up"] or 0.0 for b in branches]
    y = np.arange(len(names), dtype=float)
    if len(branches) > 1:  # the sum, after a gap
        names.append("logit (sum)")
        win.append(float(e.logits[e.winner]))
        run.append(float(e.logits[r]) if r is not None else 0.0)
        y = np.append(y, len(branches) + 0.4)
    h = 0.38
    ax.barh(y - h / 2, win, height=h, color="#1f77b4", label=f"winner: {_short(e.predicted, 24)}")
    if r is not None:
        ax.barh(y + h / 2, run, height=h, color="#ff7f0e", label=f"runner-up: {_short(e.classes[r], 24)}")
    ax.set_yticks(y, names)
    ax.set_ylim(y[-1] + 1.5, -0.6)  # top to bottom, with room for the legend below the bars
    ax.axvline(0.0, color="0.3", lw=0.8)
    lo = min(min(win), min(run), 0.0)
    hi = max(max(win), max(run), 0.0)
    span = (hi - lo) or 1.0
    ax.set_xlim(lo - 0.05 * span - (0.22 * span if lo < 0 else 0), hi + 0.28 * span)
    for yy, v in zip(y - h / 2, win):
        ax.text(v + (0.02 * span if v >= 0 else -0.02 * span), yy, f"{v:.2f}", va="center",
                ha="left" if v >= 0 else "right", fontsize=8)
    if r is not None:
        for yy, v in zip(y + h / 2, run):
            ax.text(v + (0.02 * span if v >= 0 else -0.02 * span), yy, f"{v:.2f}", va="center",
                    ha="left" if v >= 0 else "right", fontsize=8, color="0.25")
    if r is not None:  # what decides: the winner's lead per branch
        trans = ax.get_yaxis_transform()
        for yy, a, b in zip(y, win, run):
            ax.text(1.02, yy, f"Δ {a - b:+.2f}", transform=trans, ha="left", va="center", fontsize=8,
                    color="#1f77b4" if a >= b else "#d62728")
    ax.set_xlabel("contribution to the class logit" + ("\n(Δ = winner − runner-up)" if r is not None else ""))
    ax.set_title("why: per-branch contributions", loc="left")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.25)


__all__ = [
    "BRANCH_NAMES",
    "Explanation",
    "branch_contributions",
    "explain_clip",
    "frame_spans",
    "frame_times",
    "log_mel_display",
    "render",
]
