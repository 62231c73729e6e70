"""The content-addressed caches: clip + frame features, audio views, captions, descriptions,
and the one cached-batch loop that fills them."""
