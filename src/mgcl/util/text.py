"""Text helpers shared by every layer: one-line messages, natural sort order, readable labels."""

from __future__ import annotations

import re


def one_line(message: BaseException | str, limit: int = 200) -> str:
    """A message on one line, whitespace folded, at most ``limit`` characters (an exception
    without a message gives its type name)."""
    text = " ".join(str(message).split())
    if not text and isinstance(message, BaseException):
        text = type(message).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def natural_key(text) -> list:
    """Sort key in natural order: 'fold2' < 'fold10', '2' < '10', numbers before names."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(text))]


def readable_label(label: str) -> str:
    """Dataset identifiers to words for a text encoder: 'air_conditioner' -> 'air conditioner',
    'dogBark' -> 'dog bark'."""
    s = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    s = re.sub(r"[_\-]+", " ", s)
    return re.sub(r"\s+", " ", s).strip().lower()
