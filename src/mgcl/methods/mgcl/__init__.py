"""MGCL: the training-free multi-grained cache + OT (``mgcl``) and its fine-tuned variant (``mgcl_f``)."""
