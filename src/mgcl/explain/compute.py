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

Nothing here changes a model: it asks the fitted method through its public hooks
(:meth:`~mgcl.methods.base.Method.branch_contributions`, :meth:`~mgcl.methods.base.Method.explain_concepts`).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mgcl.audio.decode import load_source
from mgcl.backbones.dsp import hz_to_mel_htk, mel_filterbank, mel_to_hz_htk
from mgcl.errors import MgclError
from mgcl.methods.common import segment_starts
from mgcl.ot import ot_sim
from mgcl.text.prompts import TEMPLATES, class_text_features
from mgcl.types import AudioFeatures, Concepts
from mgcl.util.text import readable_label

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
    nearest: list = field(default_factory=list)  # the support clips nearest the query: name, label, similarity
    branch_off: bool = False
    reject_threshold: float | None = None  # the model's open-set threshold on the best probability
    unknown_label: str = "unknown"

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
        """The most probable class (what the picture explains, also when it is rejected)."""
        return self.classes[self.winner]

    @property
    def rejected(self) -> bool:
        """Whether the model answers ``unknown_label``: its best probability is below the
        model's rejection threshold (as ``predict`` decides)."""
        return self.reject_threshold is not None and float(self.probabilities[self.winner]) < self.reject_threshold

    @property
    def answer(self) -> str:
        """What ``mgcl predict`` answers: the predicted class, or ``unknown_label`` when rejected."""
        return self.unknown_label if self.rejected else self.predicted

    def branch_table(self) -> list[dict]:
        """Per branch: its contribution to the winner's and the runner-up's logit and to the
        winner's lead (``margin``), the branches that moved the decision most first."""
        w, r = self.winner, self.runner_up
        rows = [
            {
                "branch": b,
                "name": BRANCH_NAMES.get(b, b),
                "winner": float(v[w]),
                "runner_up": None if r is None else float(v[r]),
                "margin": float(v[w]) - (0.0 if r is None else float(v[r])),
            }
            for b, v in self.contributions.items()
        ]
        return sorted(rows, key=lambda row: -abs(row["margin"]))

    @property
    def deciding_branch(self) -> dict | None:
        """The branch that added most to the winner's lead over the runner-up (None without a
        runner-up or with a single 'total' branch)."""
        rows = self.branch_table()
        if self.runner_up is None or len(rows) < 2:
            return None
        return max(rows, key=lambda row: row["margin"])

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
            out.append(
                {
                    "time": round(float(self.frame_times[j]), 3),
                    "start": round(float(self.frame_spans[j, 0]), 3),
                    "end": round(float(self.frame_spans[j, 1]), 3),
                    "concept": self.concept_labels[i],
                    "mass": float(self.plan[i, j]),
                    "similarity": None if self.plan_similarity is None else float(self.plan_similarity[i, j]),
                }
            )
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
            "answer": self.answer,
            "rejected": self.rejected,
            "reject_threshold": self.reject_threshold,
            "runner_up": None if r is None else self.classes[r],
            "top_k": [{"label": c, "probability": float(p)} for c, p in self.top_k],
            "logits": {
                "winner": float(self.logits[self.winner]),
                "runner_up": None if r is None else float(self.logits[r]),
            },
            "contributions": self.branch_table(),
            "decided_by": self.deciding_branch,
            "nearest_support": list(self.nearest),
            "concepts": {
                "kind": self.concept_kind,
                "class": self.predicted,
                "labels": list(self.concept_labels),
                "note": self.concept_note,
                "branch": self.concept_branch,
                "branch_off": self.branch_off,
                "eps": self.eps,
            },
            "frames": {"count": len(self.frame_spans), "times": [round(float(t), 3) for t in self.frame_times]},
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
def log_mel_display(
    wave: np.ndarray, sample_rate: int, n_mels: int = 80, max_columns: int = 3000, top_db: float = 80.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plain log-mel spectrogram for display: (n_mels, S) dB (max 0, floor -top_db), column
    centre times (S,) in seconds, band centre frequencies (n_mels,) in Hz.

    Window ~46 ms; the hop grows for long clips so that S <= ``max_columns``.
    """

    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    n_fft = 1 << max(8, round(math.log2(0.046 * sample_rate)))
    hop = max(n_fft // 4, math.ceil(len(x) / max_columns))
    if len(x) < n_fft:  # a very short clip: pad so one frame fits
        x = torch.nn.functional.pad(x, (0, n_fft - len(x)))
    spec = torch.stft(
        x,
        n_fft=n_fft,
        hop_length=hop,
        window=torch.hann_window(n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = (spec.real.square() + spec.imag.square()).numpy()
    fb = mel_filterbank(int(sample_rate), n_fft, n_mels)
    mel = fb @ power
    db = 10.0 * np.log10(np.maximum(mel, 1e-12))
    db = np.maximum(db - db.max(), -top_db)
    times = np.arange(db.shape[1]) * hop / float(sample_rate)
    pts = mel_to_hz_htk(np.linspace(hz_to_mel_htk(0.0), hz_to_mel_htk(sample_rate / 2.0), n_mels + 2))
    return db.astype(np.float32), times, pts[1:-1]


# ----------------------------------------------------------------------------- contributions
# ----------------------------------------------------------------------------- concepts
def _short(text: str, n: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _class_sentences(classifier, label: str) -> list[str] | None:
    """The class's description sentences from the classifier's ``descriptions`` (or None)."""
    desc = getattr(classifier, "descriptions", None) or {}
    if not isinstance(desc, dict):
        return None
    found = desc.get(label)
    if found is None:
        found = desc.get(readable_label(label))
    return None if found is None else [str(s) for s in found]


def _text_labels(classifier, label: str, m: int) -> tuple[list[str], str]:
    """Row labels of a class's text concepts: the prompt, then its descriptions."""
    prompt = f'prompt: "{TEMPLATES[0].format(readable_label(label))}"'
    sentences = _class_sentences(classifier, label)
    if sentences is not None and len(sentences) == m - 1:
        return [prompt] + sentences, ""
    note = (
        "description sentences not stored with the model"
        if sentences is None
        else f"{len(sentences)} stored descriptions for {m - 1} embedded ones"
    )
    return [prompt] + [f"description {i}" for i in range(1, m)], note


def _query_frames(query: AudioFeatures) -> torch.Tensor:
    return query.frames[0][query.frame_mask[0]]


def _text_concepts(classifier, method, query: AudioFeatures, c: int) -> tuple[Concepts, list[str]] | None:
    """The class's prompt + descriptions, matched to the raw frames with uniform marginals."""
    label = classifier.classes_[c]
    if getattr(method, "concepts_", None) is not None and getattr(method, "concept_mask_", None) is not None:
        vectors = method.concepts_[c][method.concept_mask_[c]]
    else:
        bb = classifier.get_backbone()
        if not getattr(bb, "has_text", False):
            return None
        text = class_text_features(bb, [label], classifier.descriptions)
        vectors = torch.cat([text.prompts, text.descriptions[0]]) if text.descriptions else text.prompts
    if len(vectors) == 0:
        return None
    labels, note = _text_labels(classifier, label, len(vectors))
    concepts = Concepts(
        "descriptions", "ft", vectors, _query_frames(query), eps=float(getattr(method, "eps", 0.1)), note=note
    )
    return concepts, labels


def _audio_concepts(classifier, method, query: AudioFeatures, c: int) -> tuple[Concepts, list[str]] | None:
    """The method's own audio-side concepts (:meth:`~mgcl.methods.base.Method.explain_concepts`:
    mgcl_f's frame prototypes, mgcl's best-matching support segments), with row labels."""
    concepts = method.explain_concepts(query, c)
    if concepts is None:
        return None
    m = len(concepts.vectors)
    if concepts.kind == "frame prototypes":
        return concepts, [f"prototype {i + 1}" for i in range(m)]
    unit = "segment" if concepts.segment else "frame"
    names = getattr(classifier, "support_names_", None)
    if concepts.support_row is not None and names and concepts.support_row < len(names):
        concepts.note = f"{concepts.note}: {names[concepts.support_row]}"
    bb = classifier.get_backbone() if hasattr(classifier, "get_backbone") else None
    times = _nominal_times(bb, m, concepts.segment)
    return concepts, [
        f"support {unit} {i + 1}" + (f" ({t:.2f} s)" if t is not None else "") for i, t in enumerate(times)
    ]


def segment_spans(spans: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(T, 2) frame spans -> (S, 2) spans of the segments :func:`mgcl.methods.common.segments`
    makes of those T frames: from its first frame's start to its last frame's end."""
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


def _choose_concepts(classifier, method, query: AudioFeatures, c: int, which: str) -> tuple[Concepts, list[str]] | None:
    """auto: text concepts when there are at least two (prompt + a description), else the
    audio ones (mgcl_f frame prototypes, or mgcl support frames), else whatever exists."""
    text = None
    if which in ("auto", "text"):
        text = _text_concepts(classifier, method, query, c)
        if which == "text":
            if text is None:
                raise MgclError(
                    f"no text concepts: backbone '{classifier.backbone_name_}' has no text "
                    "tower (use concepts 'audio' or 'auto')"
                )
            return text
        if text is not None and len(text[0].vectors) >= 2:
            return text
    audio = _audio_concepts(classifier, method, query, c)
    if audio is None and which == "audio":
        raise MgclError(
            f"no audio concepts in this model: method '{classifier.method}' keeps neither "
            "frame prototypes (mgcl_f) nor support frames (mgcl); use concepts 'text' or 'auto'"
        )
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
        contributions = {b: v[0].detach().float().cpu().numpy() for b, v in method.branch_contributions(query).items()}
    # the classifier's own (calibrated) probabilities, as `mgcl predict` reports them
    proba = np.asarray(classifier.predict_proba_features(query)[0], dtype=np.float64)
    logits = logits.detach().float().cpu().numpy()
    order = np.argsort(-proba, kind="stable")[: min(int(top_k), len(proba))]
    top = [(classifier.classes_[i], float(proba[i])) for i in order]

    n_real = int(query.frame_mask[0].sum())
    spans = frame_spans(backbone, len(wave), n_real)
    spec, spec_t, spec_f = log_mel_display(wave, int(backbone.sample_rate))

    expl = Explanation(
        source=_source_label(source),
        method=classifier.method,
        backbone=classifier.backbone_name_,
        sample_rate=int(backbone.sample_rate),
        waveform=wave,
        spectrogram=spec,
        spec_times=spec_t,
        spec_freqs=spec_f,
        frame_spans=spans,
        classes=list(classifier.classes_),
        probabilities=proba,
        logits=logits,
        contributions=contributions,
        top_k=top,
        reject_threshold=getattr(classifier, "reject_threshold_", None),
        unknown_label=getattr(classifier, "unknown_label_", None) or classifier.unknown_label,
    )
    if hasattr(classifier, "nearest_support"):
        expl.nearest = classifier.nearest_support(query, 3)[0]
    winner = int(np.argmax(proba))
    with torch.no_grad():
        chosen = _choose_concepts(classifier, method, query, winner, concepts) if n_real else None
    if chosen is None:
        expl.concept_note = (
            "no frame-level concepts in this model (method "
            f"'{classifier.method}' on backbone '{classifier.backbone_name_}')"
        )
        return expl
    chosen, labels = chosen
    if chosen.segment is not None:  # the plan's columns are segments of frames
        expl.frame_spans = segment_spans(spans, *chosen.segment)
    eps = chosen.eps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with torch.no_grad():
            _, plan = ot_sim(
                chosen.frames.float(),
                chosen.vectors.float(),
                a=chosen.frame_weights,
                b=chosen.concept_weights,
                eps=eps,
                return_plan=True,
            )
    sim = chosen.frames.float() @ chosen.vectors.float().T  # (T, M)
    plan = plan.double().cpu().numpy().T  # (M, T)
    expl.plan = plan
    expl.plan_similarity = sim.double().cpu().numpy().T
    m, t = plan.shape
    expl.row_marginal = np.full(m, 1.0 / m) if chosen.concept_weights is None else _normalised(chosen.concept_weights)
    expl.col_marginal = np.full(t, 1.0 / t) if chosen.frame_weights is None else _normalised(chosen.frame_weights)
    expl.concept_labels = list(labels)
    expl.concept_kind = chosen.kind
    expl.concept_note = chosen.note
    expl.eps = eps
    branch = chosen.branch
    if "total" not in contributions:
        expl.concept_branch = branch
        values = contributions.get(branch)
        expl.branch_off = values is None or not bool(np.any(values != 0))
        moved = _share_of_margin(expl, branch)
        decided = expl.deciding_branch
        if concepts != "auto" and expl.branch_off:  # asked for: drawn, with a warning
            off = f"branch {branch} has weight 0 in this model: the plan shows the match, it did not move the decision"
            expl.concept_note = f"{expl.concept_note}; {off}" if expl.concept_note else off
        elif concepts == "auto" and (expl.branch_off or moved < MIN_PLAN_SHARE):
            # the plan would show a match that did not decide: say what did, and leave it out
            what = "weight 0 in this model" if expl.branch_off else f"{100 * moved:.0f} % of the winner's lead"
            lead = (
                f"{BRANCH_NAMES.get(decided['branch'], decided['branch'])} decided "
                f"(+{decided['margin']:.2f} of the +{_lead(expl):.2f} lead over '{expl.classes[expl.runner_up]}')"
                if decided is not None
                else ""
            )
            expl.concept_note = "; ".join(
                x
                for x in (
                    lead,
                    f"the {BRANCH_NAMES.get(branch, branch)} had {what}, so its OT plan is not drawn",
                )
                if x
            )
            expl.plan = expl.plan_similarity = None
            expl.concept_labels = []
    return expl


#: The OT plan is drawn only for a branch that gave at least this share of the winner's lead
#: (the sum of the branches' positive contributions to it).
MIN_PLAN_SHARE = 0.1


def _lead(e: Explanation) -> float:
    r = e.runner_up
    return float(e.logits[e.winner] - (e.logits[r] if r is not None else 0.0))


def _share_of_margin(e: Explanation, branch: str) -> float:
    """The branch's part of the winner's lead: its margin over the sum of positive margins."""
    rows = e.branch_table()
    positive = sum(max(row["margin"], 0.0) for row in rows) or 1.0
    mine = next((row["margin"] for row in rows if row["branch"] == branch), 0.0)
    return max(mine, 0.0) / positive


def _normalised(w: torch.Tensor) -> np.ndarray:
    w = w.double().cpu().numpy()
    return w / w.sum() if w.sum() > 0 else w
