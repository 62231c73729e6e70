"""``mgcl serve``: the HTTP service and its web page (:mod:`mgcl.serve`); needs the ``serve`` extra."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import textwrap
from pathlib import Path

from mgcl.cli.common import add_command, add_machine_options, machine_options, split_list
from mgcl.errors import MgclError
from mgcl.pipeline import default_store
from mgcl.serve import REQUIRED_MODULES, ServeConfig
from mgcl.serve.app import run as run_app
from mgcl.serve.service import Service

HELP = 'serve models over HTTP, with a web page to fit and try them (pip install "mgcl[serve]")'

DESCRIPTION = textwrap.fill(
    "Serve the models in --models over HTTP: a JSON API (GET /models, POST /models/NAME/predict, "
    "POST /models/NAME/explain, POST /models to fit from uploaded examples, DELETE /models/NAME; "
    "documented at /docs) and a web page at / where you add examples per class by upload or by "
    "recording in the browser, fit, classify a clip and see the top classes and the explanation. "
    "The backbone loads once; models are kept loaded (least recently used dropped); inference "
    "runs on --workers threads behind a queue of --queue requests (503 with Retry-After when "
    "full). Uploads are limited while they stream in (--max-upload-mb) and by decoded length "
    "(--max-seconds). Binding to anything but loopback needs a token (--token or $MGCL_TOKEN); "
    "with one, every route but /healthz and the page needs 'Authorization: Bearer TOKEN'.",
    88,
)

EPILOG = """examples:
  mgcl serve --models models/                      # http://127.0.0.1:8000/
  MGCL_TOKEN=s3cret mgcl serve --models models/ --host 0.0.0.0 --port 8080
  curl -F files=@dog.wav http://127.0.0.1:8000/models/my_model/predict

See docs/serving.md for the API, the options and deployment notes."""


def register(sub) -> argparse.ArgumentParser:
    p = add_command(sub, "serve", run, HELP, DESCRIPTION, EPILOG)
    p.add_argument("--models", type=Path, required=True, metavar="DIR", help="folder of the served models (created)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--backbone", default="aisfx", help="the backbone every served model uses (default aisfx)")
    p.add_argument("--checkpoint", help="checkpoint id or local folder (--backbone clap)")
    add_machine_options(p)
    p.add_argument(
        "--store",
        type=Path,
        default=default_store(),
        metavar="DIR",
        help="feature store: uploaded audio is embedded once per content "
        "(default $MGCL_STORE or ~/.cache/mgcl/features)",
    )
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (default $MGCL_TOKEN; prefer the variable)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body in MB (default 20)")
    p.add_argument("--max-seconds", type=float, default=600.0, help="longest uploaded clip in seconds (default 600)")
    p.add_argument("--workers", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--threads", type=int, default=0, help="torch threads per worker (default: the CPUs / workers)")
    p.add_argument("--queue", type=int, default=16, help="requests waiting for a worker before 503 (default 16)")
    p.add_argument("--model-cache", type=int, default=8, help="models kept loaded (default 8)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per backbone forward (default 16)")
    p.add_argument("--method", default="mgcl", help="method of a fit that names none (default mgcl)")
    p.add_argument("--cors", metavar="ORIGIN", help="allow these browser origins (comma-separated); default: none")
    return p


def missing_extra() -> list[str]:
    """The modules of the ``serve`` extra that are not installed."""
    return [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]


def run(args) -> int:
    missing = missing_extra()
    if missing:
        raise MgclError(
            f'the web service needs the serve extra ({", ".join(missing)} missing): pip install "mgcl[serve]"'
        )
    options = {"checkpoint": args.checkpoint} if args.checkpoint else {}
    config = ServeConfig(
        models=args.models,
        host=args.host,
        port=args.port,
        backbone=args.backbone,
        backbone_options={**options, **machine_options(args)},
        store=args.store,
        token=args.token,
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        workers=args.workers,
        queue=args.queue,
        threads=args.threads,
        model_cache=args.model_cache,
        batch_size=args.batch_size,
        cors=tuple(split_list(args.cors)),
        default_method=args.method,
    ).check()  # refuses a public address without a token before the backbone loads
    service = Service(config)
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(
        f"mgcl serve: {len(service.models.names())} model(s) in {config.models}, backbone {service.backbone.name}; "
        f"open http://{host}:{config.port}/" + (" (token required)" if config.token else ""),
        file=sys.stderr,
    )
    run_app(service)
    return 0
