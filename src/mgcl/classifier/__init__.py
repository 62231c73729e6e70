"""``FewShotAudioClassifier``: a backbone + a few-shot method, fitted on a few labelled clips,
saved as JSON + safetensors."""

from mgcl.classifier.estimator import FewShotAudioClassifier

__all__ = ["FewShotAudioClassifier"]
