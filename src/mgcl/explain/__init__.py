"""Why a model chose a class: what each branch contributed and which moments of the clip
matched which concepts (:mod:`.compute`), drawn as a picture (:mod:`.render`)."""
