"""Category concepts (text side): prompts, and later LLM descriptions and audio captions."""

from mgcl.text.prompts import TEMPLATES, class_text_features, readable_label

__all__ = ["TEMPLATES", "class_text_features", "readable_label"]
