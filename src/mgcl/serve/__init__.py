"""`mgcl serve`: few-shot classifiers over HTTP and a web page to build and try them.

    ServeConfig (checked) -> Service (one backbone, models folder, worker pool) -> app (FastAPI) -> uvicorn

:mod:`.config` the options and the start-up checks; :mod:`.models` the models folder (names,
LRU of loaded models, atomic create, delete); :mod:`.work` the bounded worker pool and fit
jobs; :mod:`.uploads` uploaded files; :mod:`.service` the work of each route;
:mod:`.app` the HTTP layer (imports FastAPI only when an app is made); ``static/`` the page.
The web framework is the optional extra ``mgcl[serve]``: nothing here imports it at import time.
"""

from mgcl.serve.config import ServeConfig, is_loopback
from mgcl.serve.errors import ServeError

#: The third-party modules the ``serve`` extra provides.
REQUIRED_MODULES = ("fastapi", "uvicorn", "multipart")

__all__ = ["REQUIRED_MODULES", "ServeConfig", "ServeError", "is_loopback"]
