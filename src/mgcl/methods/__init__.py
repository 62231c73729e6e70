"""Few-shot methods by name: ``make_method("mgcl", **hyper_parameters)``. Methods see
features only (:mod:`mgcl.types`), never audio or backbones."""

from mgcl.methods.base import Method
from mgcl.methods.registry import available_methods, make_method, method_class

__all__ = ["Method", "available_methods", "make_method", "method_class"]
