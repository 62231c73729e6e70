"""mgcl: few-shot audio recognition on pretrained audio-language models.

Data flow (one package per step, imports point down only)::

    audio -> backbones -> store -> methods -> evaluation / explain / classifier -> pipeline -> cli

``from mgcl import FewShotAudioClassifier`` is the Python entry point (imported on first use,
so ``import mgcl`` stays light).
"""

from mgcl.version import __version__

__all__ = ["FewShotAudioClassifier", "__version__"]


def __getattr__(name: str):
    if name == "FewShotAudioClassifier":
        # lazy on purpose (PEP 562): `import mgcl` stays light; torch loads on first use of the class
        from mgcl.classifier.estimator import FewShotAudioClassifier

        return FewShotAudioClassifier
    raise AttributeError(f"module 'mgcl' has no attribute {name!r}")
