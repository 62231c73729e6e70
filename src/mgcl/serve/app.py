"""The HTTP face of :class:`~mgcl.serve.service.Service`: a FastAPI app (JSON API, the page at
``/``, OpenAPI at ``/docs``), its upload limit, token check and error answers.

FastAPI, Starlette, uvicorn and python-multipart are imported inside :func:`create_app` and
:func:`run`, never at import time: ``import mgcl`` and every other ``mgcl`` command work
without the ``serve`` extra.

Every error answer is ``{"detail": "<one line>"}`` with its status: 400 bad name / path /
option, 401 no or wrong token, 404 unknown model or job, 409 name taken or model of another
backbone, 413 body past ``--max-upload-mb`` (counted while it streams in, and refused at
once from ``Content-Length``), 422 unusable audio (mgcl's one-line reason) or too long,
503 queue full (with ``Retry-After``), 500 anything unexpected (logged; no trace sent).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations, and
# the types they name (UploadFile, Request) are imported inside create_app.
import asyncio
import hmac
import json
import logging
import shutil
from functools import partial
from pathlib import Path
from typing import Annotated

from mgcl.errors import MgclError
from mgcl.serve.errors import Busy, ServeError
from mgcl.serve.service import Service
from mgcl.util.text import one_line
from mgcl.version import __version__

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

#: The page's content security policy: its own files only (no CDN), blob: for recordings
#: and the explanation picture.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
)

API_DESCRIPTION = """Few-shot audio classifiers over HTTP. Fit a model from a few labelled clips
(`POST /models`), classify clips (`POST /models/{name}/predict`), see why
(`POST /models/{name}/explain`). Errors are `{"detail": "<one line>"}`. With a token, every
route but `/healthz` and the page needs `Authorization: Bearer <token>`."""


async def _send_json(send, status: int, doc: dict, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(doc).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class UploadLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` is refused with 413 before
    it is read: at once when ``Content-Length`` says so, else as soon as the bytes received
    pass the limit (the receive channel raises ``error_type``, which the app answers, or
    this middleware when the app did not)."""

    def __init__(self, app, max_bytes: int, error_type: type[Exception], message: str):
        self.app, self.max_bytes, self.error_type, self.message = app, int(max_bytes), error_type, message

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                await _send_json(send, 400, {"detail": "invalid Content-Length header"}, {"connection": "close"})
                return
            if n > self.max_bytes:
                await _send_json(send, 413, {"detail": self.message}, {"connection": "close"})
                return
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self.error_type(413, self.message)
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except self.error_type:
            if started:
                raise
            await _send_json(send, 413, {"detail": self.message}, {"connection": "close"})


class Arrivals:
    """ASGI middleware: a ``POST /models/NAME/predict`` is announced to the worker pool while
    its upload is read (:meth:`~mgcl.serve.work.WorkerPool.arriving`), so that a batch about
    to start waits a moment for it; the endpoint hands the announcement over when it queues
    the job, and a request that never gets there withdraws it here."""

    def __init__(self, app, pool):
        self.app, self.pool = app, pool

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        parts = path.split("/")
        if scope.get("method") != "POST" or len(parts) != 4 or parts[1] != "models" or parts[3] != "predict":
            await self.app(scope, receive, send)
            return
        key = ("predict", parts[2])
        state = scope.setdefault("state", {})
        state[ARRIVAL] = key
        self.pool.arriving(key, +1)
        try:
            await self.app(scope, receive, send)
        finally:
            if state.pop(ARRIVAL, None) is not None:
                self.pool.arriving(key, -1)


#: Where :class:`Arrivals` leaves a predict request's announcement in the ASGI scope's state.
ARRIVAL = "mgcl_arrival"


def create_app(service: Service):
    """The FastAPI app serving ``service`` (needs the ``serve`` extra)."""
    from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile  # noqa: PLC0415
    from fastapi.exceptions import RequestValidationError  # noqa: PLC0415
    from fastapi.middleware.cors import CORSMiddleware  # noqa: PLC0415
    from fastapi.openapi.docs import get_swagger_ui_html  # noqa: PLC0415
    from fastapi.responses import FileResponse, JSONResponse, Response  # noqa: PLC0415
    from fastapi.staticfiles import StaticFiles  # noqa: PLC0415
    from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: PLC0415

    cfg = service.config

    class BodyTooLarge(HTTPException):
        """Raised from the receive channel past the upload limit (FastAPI lets an
        HTTPException from body parsing through as itself)."""

    app = FastAPI(
        title="mgcl serve",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.service = service

    # ---------------------------------------------------------------- errors: one line, no trace
    @app.exception_handler(ServeError)
    async def _serve_error(request, exc: ServeError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(MgclError)
    async def _mgcl_error(request, exc: MgclError):
        return JSONResponse({"detail": one_line(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        parts = []
        for err in exc.errors()[:3]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc: StarletteHTTPException):
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (see the server log)"}, status_code=500)

    # ---------------------------------------------------------------- auth
    def auth(request: Request) -> None:
        if not cfg.token:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), cfg.token.encode()):
            raise HTTPException(
                401,
                "missing or wrong token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    guarded = [Depends(auth)]

    async def on_worker(fn, *args):
        """Run ``fn`` on the worker pool (503 when its queue is full) and await it."""
        return await asyncio.wrap_future(service.pool.submit(fn, *args))

    async def read_files(files) -> list[tuple[str, bytes]]:
        return [(f.filename or "", await f.read()) for f in files]

    # ---------------------------------------------------------------- page, health, docs
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["service"])
    async def healthz():
        """Liveness: always 200 while the server runs (no token needed)."""
        return {"status": "ok"}

    @app.get("/info", tags=["service"], dependencies=guarded)
    async def info():
        """Version, backbone (name, identity, sample rate), methods, limits."""
        return service.info()

    @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
    async def openapi():
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guarded)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mgcl serve - API")

    # ---------------------------------------------------------------- models
    @app.get("/models", tags=["models"], dependencies=guarded)
    async def list_models():
        """Every model under --models: name, method, backbone, classes, created, sha256."""
        return {"models": await asyncio.to_thread(service.models.list)}

    @app.get("/models/{name:path}", tags=["models"], dependencies=guarded)
    async def get_model(name: str):
        """One model's summary (404 when absent, 400 for a bad name)."""
        return await asyncio.to_thread(service.models.info, name)

    @app.delete("/models/{name:path}", tags=["models"], dependencies=guarded)
    async def delete_model(name: str):
        """Delete a model (404 when absent)."""
        await asyncio.to_thread(service.models.delete, name)
        return {"deleted": name}

    @app.post("/models/{name:path}/predict", tags=["models"], dependencies=guarded)
    async def predict(
        request: Request,
        name: str,
        files: Annotated[list[UploadFile], File(description="audio files (wav, flac, ogg, mp3, ...)")],
        top_k: int = Query(3, ge=1, le=1000, description="classes per file, most probable first"),
    ):
        """Classify one or more files: per file {file, label, score, top_k: [{label, score}]}
        or {file, error}; 422 when no file could be used."""
        service.models.info(name)  # 400 / 404 before any work
        folder, uploads = service.save(await read_files(files))
        try:
            announced = request.scope.get("state", {}).pop(ARRIVAL, None) == ("predict", name)
            future = service.pool.submit_batchable(
                ("predict", name),
                (uploads, top_k),
                partial(service.predict_many, name),
                size=len(uploads),
                arrived=announced,
            )
            results = await asyncio.wrap_future(future)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"model": name, "results": results}

    @app.post(
        "/models/{name:path}/explain",
        tags=["models"],
        dependencies=guarded,
        responses={200: {"content": {"image/png": {}, "application/json": {}}}},
    )
    async def explain(
        name: str,
        file: Annotated[UploadFile, File(description="one audio file")],
        format: str = Query("png", pattern="^(png|json)$", description="png: the picture; json: its numbers"),
        top_k: int = Query(3, ge=1, le=1000),
    ):
        """The `mgcl explain` picture of one clip (image/png), or its numbers (?format=json)."""
        service.models.info(name)
        folder, uploads = service.save(await read_files([file]))
        try:
            out = await on_worker(service.explain, name, uploads[0], top_k, format == "json")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if format == "json":
            return out
        return Response(out, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/models", tags=["models"], dependencies=guarded, status_code=202)
    async def create_model(
        name: Annotated[str, Form(description="the new model's name: 1-64 of A-Z a-z 0-9 . _ -")],
        files: Annotated[list[UploadFile], File(description="the examples")],
        labels: Annotated[list[str], Form(description="one class label per file, in the same order")],
        method: Annotated[str | None, Form(description="few-shot method (default: the server's, see /info)")] = None,
        params: Annotated[
            str | None, Form(description='method hyper-parameters as a JSON object, e.g. {"topk": 16}')
        ] = None,
        wait: bool = Query(False, description="answer when the model is saved (201) instead of at once (202)"),
    ):
        """Fit a model from labelled examples and save it under --models (atomically). Answers
        202 with a job to poll at /jobs/{id}, or with ?wait=true 201 and the model's summary."""
        method, parsed = service.check_fit(name, labels, len(files), method, params)
        folder, uploads = service.save(await read_files(files))
        job = service.jobs.new("fit", name)
        try:
            fut = service.pool.submit(service.run_job, job, folder, service.fit, name, uploads, labels, method, parsed)
        except Busy:
            service.jobs.forget(job.id)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if not wait:
            return {"job": job.id, "status_url": f"/jobs/{job.id}", **job.to_dict()}
        model = await asyncio.wrap_future(fut)
        return JSONResponse(model, status_code=201)

    @app.get("/jobs/{job_id}", tags=["models"], dependencies=guarded)
    async def get_job(job_id: str):
        """A fit's progress: status (queued, running, done, failed), stage, done/total,
        the model's summary when done, the error (and its status) when failed."""
        return service.jobs.get(job_id).to_dict()

    # ---------------------------------------------------------------- middleware
    mb = f"{cfg.max_upload_mb:g}"
    app.add_middleware(
        UploadLimit,
        max_bytes=cfg.max_upload_bytes,
        error_type=BodyTooLarge,
        message=f"request body larger than this server's limit of {mb} MB (--max-upload-mb)",
    )
    app.add_middleware(Arrivals, pool=service.pool)
    if cfg.cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def run(service: Service, log_level: str = "info") -> None:
    """Serve ``service`` with uvicorn on its host and port until interrupted."""
    import uvicorn  # noqa: PLC0415

    app = create_app(service)
    config = uvicorn.Config(
        app,
        host=service.config.host,
        port=int(service.config.port),
        log_level=log_level,
        server_header=False,
        access_log=log_level == "debug",
    )
    try:
        uvicorn.Server(config).run()
    finally:
        service.close()
