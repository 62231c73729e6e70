"""mgcl: few-shot audio recognition on pretrained audio-language models.

Data flow: audio files -> :mod:`mgcl.audio` -> a backbone (:mod:`mgcl.backbones`) ->
:class:`mgcl.features.FeatureStore` -> methods (:mod:`mgcl.methods`) -> reports.
"""

__version__ = "0.1.0"
