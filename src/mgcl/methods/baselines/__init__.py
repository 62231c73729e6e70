"""The published methods mgcl is compared with, on the same features."""
