"""The version of mgcl (one place; the package, models and results JSON record it)."""

__version__ = "0.1.0"
