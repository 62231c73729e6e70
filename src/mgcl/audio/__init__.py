"""Audio in: decode, validate and resample files (:mod:`.decode`); audio views of support
clips for augmentation (:mod:`.views`)."""
