"""Small helpers every layer may use: atomic writes, hashing, text, progress, logging."""
