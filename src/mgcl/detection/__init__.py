"""Few-shot detection of events in long recordings (``mgcl detect``): streamed frames, window
scores from the fitted method, median filter + hysteresis into DCASE-style events, and the
soundscape benchmark (``mgcl benchmark --protocol detection``)."""
