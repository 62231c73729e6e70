"""Class prompts: readable names, a template ensemble, and the text features of a class set.

Like open_clip's ``build_zero_shot_classifier``: every class name is put in every template,
all sentences are embedded in one batched call, and each class's prompt embedding is the
normalised mean over its templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mgcl.types import TextFeatures, l2_normalize
from mgcl.util.text import readable_label

TEMPLATES: tuple[str, ...] = (
    "This is a sound of {}.",
    "A recording of {}.",
    "The sound of {}.",
    "A sound clip of {}.",
    "Audio of {}.",
)


def class_text_features(
    backbone,
    classes: Sequence[str],
    descriptions: Mapping[str, Sequence[str]] | None = None,
    templates: Sequence[str] = TEMPLATES,
) -> TextFeatures:
    """Prompt embeddings (C, D) (template ensemble) and description embeddings C x (M_c, D).

    ``descriptions`` maps a class (its label or readable name) to sentences; missing
    classes get an empty set.
    """
    names = [readable_label(c) for c in classes]
    sentences = [t.format(n) for n in names for t in templates]
    desc_lists = []
    for c, n in zip(classes, names):
        d = (descriptions or {}).get(c) or (descriptions or {}).get(n) or []
        desc_lists.append(list(d))
    flat = [s for d in desc_lists for s in d]
    emb = backbone.encode_text(sentences + flat).detach()  # features, never a graph into the text tower
    prompts = l2_normalize(emb[: len(sentences)].reshape(len(names), len(templates), -1).mean(1))
    rest, out = emb[len(sentences) :], []
    for d in desc_lists:
        out.append(rest[: len(d)])
        rest = rest[len(d) :]
    return TextFeatures(prompts=prompts, descriptions=out)
