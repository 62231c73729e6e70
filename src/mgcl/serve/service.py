"""The service without HTTP: one backbone, the models folder, the worker pool, and the work
each route does (run on a worker thread).

    upload -> uploads.save_uploads -> duration check -> pipeline.predict / explain / fit_classifier
                                                        (features through the feature store)

Everything here raises :class:`~mgcl.serve.errors.ServeError` (with its HTTP status) or
:class:`~mgcl.errors.MgclError` (one line); :mod:`mgcl.serve.app` turns them into answers.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mgcl.errors import AudioError, MgclError
from mgcl.explain.compute import explain_clip
from mgcl.explain.render import render
from mgcl.methods.registry import available_methods, build_method, method_class
from mgcl.pipeline import check_text_needs, default_store, feature_store, fit_classifier, make_backbone, predict
from mgcl.serve.config import ServeConfig
from mgcl.serve.errors import BadAudio, BadRequest, ServeError
from mgcl.serve.models import ModelRegistry, check_name
from mgcl.serve.uploads import Upload, content_key, decoded_seconds_over, public_reason, save_uploads
from mgcl.serve.work import Job, Jobs, WorkerPool
from mgcl.store.features import embed_sources
from mgcl.util.text import one_line
from mgcl.version import __version__

log = logging.getLogger(__name__)

#: Longest class label accepted when fitting.
MAX_LABEL = 100


def _join_errors(errors: Sequence[str], total: int, what: str) -> str:
    shown = "; ".join(errors[:3]) + (f" (and {len(errors) - 3} more)" if len(errors) > 3 else "")
    return shown if total == 1 else f"{len(errors)} of {total} {what} could not be used: {shown}"


class Service:
    """What ``mgcl serve`` runs: ``config`` (checked), the backbone (built once; tests pass
    one), the models registry, the worker pool and the fit jobs."""

    def __init__(self, config: ServeConfig, backbone=None):
        self.config = config.check()
        self.store_dir = Path(config.store).expanduser() if config.store is not None else default_store()
        self.backbone = (
            backbone if backbone is not None else make_backbone(config.backbone, **dict(config.backbone_options or {}))
        )
        if config.default_method not in self.methods():
            raise MgclError(
                f"--method {config.default_method}: not a method backbone '{self.backbone.name}' can fit "
                f"(choose from: {', '.join(self.methods())})"
            )
        self.models = ModelRegistry(config.models, self.backbone, self.store_dir, config.model_cache)
        self.pool = WorkerPool(config.workers, config.queue, config.torch_threads(), max_batch=config.batch_size)
        self.jobs = Jobs()
        self.uploads_root = Path(tempfile.mkdtemp(prefix="mgcl-serve-"))
        self.started = time.time()

    def close(self) -> None:
        shutil.rmtree(self.uploads_root, ignore_errors=True)

    # ------------------------------------------------------------------ describe
    def methods(self) -> list[str]:
        """Methods the served backbone can fit (text methods need a text tower)."""
        has_text = getattr(self.backbone, "has_text", False)
        return [m for m in available_methods() if has_text or not getattr(method_class(m), "needs_text", False)]

    def info(self) -> dict:
        c = self.config
        return {
            "mgcl_version": __version__,
            "backbone": {
                "name": self.backbone.name,
                "identity": self.backbone.identity,
                "sample_rate": int(self.backbone.sample_rate),
                "has_text": bool(getattr(self.backbone, "has_text", False)),
            },
            "methods": self.methods(),
            "default_method": c.default_method,
            "limits": {"max_upload_mb": c.max_upload_mb, "max_seconds": c.max_seconds},
            "workers": c.workers,
            "queue": c.queue,
            "pool": self.pool.stats(),
            "loaded_models": self.models.loaded(),
            "auth": bool(c.token),
        }

    # ------------------------------------------------------------------ uploads
    def new_upload_folder(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="req-", dir=self.uploads_root))

    def save(self, items) -> tuple[Path, list[Upload]]:
        """Write ``(name, bytes)`` items into a fresh request folder."""
        folder = self.new_upload_folder()
        try:
            return folder, save_uploads(folder, items)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def too_long(self, uploads: Sequence[Upload]) -> dict[int, str]:
        """Uploads longer than ``--max-seconds`` (decoded), by index; clips already in the
        feature store were checked when they were embedded and are not decoded again."""
        store = feature_store(self.backbone, self.store_dir)
        out = {}
        for i, u in enumerate(uploads):
            key = content_key(u.path)
            if key is not None and store is not None and key in store:
                continue
            seconds = decoded_seconds_over(u.path, self.config.max_seconds)
            if seconds is not None:
                limit = f"{self.config.max_seconds:g} s"
                out[i] = f"{u.name}: {seconds:.1f} s of audio, longer than this server's limit of {limit}"
        return out

    # ------------------------------------------------------------------ predict
    def predict(self, name: str, uploads: Sequence[Upload], top_k: int = 3) -> list[dict]:
        """Per upload ``{"file", "label", "score", "top_k": [{"label", "score"}]}`` or
        ``{"file", "error"}``; all of them bad -> :class:`BadAudio` (422)."""
        out = self.predict_many(name, [(uploads, top_k)])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def predict_many(self, name: str, requests: Sequence[tuple[Sequence[Upload], int]]) -> list:
        """:meth:`predict` for several requests to model ``name`` at once: their files go
        through the backbone together (``batch_size`` clips per forward), each request gets
        its records or its exception (a request whose files are all bad: :class:`BadAudio`)."""
        for uploads, top_k in requests:
            if int(top_k) != top_k or top_k < 1:
                raise BadRequest(f"top_k must be at least 1, got {top_k}")
            if not uploads:
                raise BadRequest("no audio file uploaded (multipart field 'files')")
        clf = self.models.get(name)
        flat = [u for uploads, _ in requests for u in uploads]
        errors = self.too_long(flat)
        todo = [i for i in range(len(flat)) if i not in errors]
        tops: dict[int, list] = {}
        if todo:
            k = max(int(top_k) for _, top_k in requests)
            out = predict(clf, [str(flat[i].path) for i in todo], self.store_dir, self.config.batch_size, k)
            for j, msg in out.errors.items():
                u = flat[todo[j]]
                errors[todo[j]] = f"{u.name}: {public_reason(msg, u)}"
            tops = {todo[j]: top for j, top in zip(out.indices, out.top_k)}
        answers: list = []
        start = 0
        for uploads, top_k in requests:
            idx = range(start, start + len(uploads))
            start += len(uploads)
            bad = [errors[i] for i in idx if i in errors]
            if len(bad) == len(uploads):
                answers.append(BadAudio(_join_errors(bad, len(uploads), "files")))
                continue
            records = []
            for i in idx:
                u = flat[i]
                if i in errors:
                    records.append({"file": u.name, "error": errors[i].removeprefix(f"{u.name}: ")})
                    continue
                top = tops[i][: int(top_k)]
                records.append(
                    {
                        "file": u.name,
                        "label": top[0][0],
                        "score": round(float(top[0][1]), 6),
                        "top_k": [{"label": lab, "score": round(float(p), 6)} for lab, p in top],
                    }
                )
            answers.append(records)
        return answers

    # ------------------------------------------------------------------ explain
    def explain(self, name: str, upload: Upload, top_k: int = 3, as_json: bool = False) -> bytes | dict:
        """The `mgcl explain` picture of one upload (PNG bytes) or, ``as_json``, its numbers."""
        if int(top_k) != top_k or top_k < 1:
            raise BadRequest(f"top_k must be at least 1, got {top_k}")
        clf = self.models.get(name)
        too_long = self.too_long([upload])
        if too_long:
            raise BadAudio(too_long[0])
        try:
            expl = explain_clip(clf, str(upload.path), top_k=int(top_k))
        except AudioError as exc:
            raise BadAudio(f"{upload.name}: {exc.reason}") from None
        except ServeError:
            raise
        except MgclError as exc:
            raise BadAudio(f"{upload.name}: {public_reason(one_line(exc), upload)}") from None
        if as_json:
            doc = expl.to_dict()
            doc["file"] = upload.name
            return doc
        png = upload.path.parent / "explanation.png"
        render(expl, png)
        return png.read_bytes()

    # ------------------------------------------------------------------ fit
    def check_fit(self, name: str, labels: Sequence[str], n_files: int, method: str | None, params: str | None):
        """Validate a fit request before any work (400 / 409): returns (method, params dict)."""
        check_name(name)
        self.models.check_new(name)
        method = method or self.config.default_method
        if method not in available_methods():
            raise BadRequest(f"unknown method '{method}' (choose from: {', '.join(available_methods())})")
        try:
            parsed = json.loads(params) if params else {}
        except ValueError:
            raise BadRequest('params must be a JSON object, e.g. {"topk": 16}') from None
        if not isinstance(parsed, dict):
            raise BadRequest('params must be a JSON object, e.g. {"topk": 16}')
        try:
            build_method(method, parsed)
            check_text_needs([method], self.backbone)
        except MgclError as exc:
            raise BadRequest(one_line(exc)) from None
        if n_files == 0:
            raise BadRequest("no audio file uploaded (multipart field 'files')")
        if len(labels) != n_files:
            raise BadRequest(f"got {n_files} files but {len(labels)} labels: give one label per file")
        for lab in labels:
            if not str(lab).strip() or len(str(lab)) > MAX_LABEL:
                raise BadRequest(f"labels must be 1-{MAX_LABEL} characters, got '{str(lab)[:MAX_LABEL]}'")
        if len(set(labels)) < 2:
            raise BadRequest(f"need at least 2 classes to fit, got {len(set(labels))}")
        return method, parsed

    def fit(
        self, job: Job, name: str, uploads: Sequence[Upload], labels: Sequence[str], method: str, params: dict
    ) -> dict:
        """Embed the examples (progress in ``job``), fit, save as model ``name`` (atomic)."""
        self.models.check_new(name)
        job.update("checking the examples", 0, len(uploads))
        bad = self.too_long(uploads)
        if bad:
            raise BadAudio("no model fitted: " + _join_errors([bad[i] for i in sorted(bad)], len(uploads), "examples"))
        paths = [str(u.path) for u in uploads]
        job.update("embedding the examples", 0, len(uploads))

        def tick(k: int) -> None:
            job.done += k

        res = embed_sources(
            self.backbone,
            paths,
            store=feature_store(self.backbone, self.store_dir),
            batch_size=self.config.batch_size,
            progress=tick,
        )
        if res.errors:
            msgs = [f"{uploads[i].name}: {public_reason(res.errors[i], uploads[i])}" for i in sorted(res.errors)]
            raise BadAudio("no model fitted: " + _join_errors(msgs, len(uploads), "examples"))
        job.update(f"fitting {method}", len(uploads), len(uploads))
        report = fit_classifier(
            self.backbone,
            paths,
            [str(v) for v in labels],
            method=method,
            params=params,
            store_dir=self.store_dir,
            batch_size=self.config.batch_size,
        )
        clf = report.classifier
        clf.support_names_ = [u.name for u in uploads]  # the client's names, not server paths
        job.update("saving", len(uploads), len(uploads))
        return self.models.create(name, clf)

    def run_job(self, job: Job, folder: Path, fn, *args) -> dict:
        """Run ``fn(job, *args)`` as ``job``: its outcome is recorded in it, the request's
        upload folder removed; errors are re-raised for a waiting request."""
        job.status, job.stage = "running", "starting"
        try:
            job.result = fn(job, *args)
            job.status, job.stage = "done", "done"
            return job.result
        except ServeError as exc:
            job.status, job.error, job.error_status = "failed", str(exc), exc.status
            raise
        except MgclError as exc:  # the same status for a waiting request as for the job
            msg = one_line(exc).replace(str(folder), "<upload>")
            job.status, job.error, job.error_status = "failed", msg, 422
            raise ServeError(msg, 422) from None
        except Exception:
            log.exception("job %s (%s %s) failed", job.id, job.kind, job.name)
            job.status, job.error, job.error_status = "failed", "internal error (see the server log)", 500
            raise
        finally:
            job.finished = time.time()
            shutil.rmtree(folder, ignore_errors=True)
