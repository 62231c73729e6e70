"""The Ray engine: the embedding pass as Ray Data batch inference, the store written here.

    driver (this process)                         Ray workers (one actor per backbone)
    hash every source, read the store's hits      (files: paths on a shared filesystem, or
                                                   URIs read through pyarrow.fs: s3://...)
    the misses, in batches of ``batch_size`` ──►  read + decode the files, encode_audio
    write each entry as it streams back     ◄──   (index, error | clip, frames) rows
    (one writer: no shared writable store)

The batches are the local engine's (``todo`` cut every ``batch_size``), so each actor call
embeds exactly the clips one local ``encode_audio`` call would (bit-identical features with
the same torch thread count). Inside an actor the batch goes through
:func:`mgcl.store.cached.map_cached` without a cache, so a file that fails to decode is an
error row (never a retry) and a clip that makes the backbone fail fails alone, with the local
engine's messages. Ray restarts an actor that dies (``MAX_RESTARTS``) and re-runs its batch
(``MAX_TASK_RETRIES``); results already written stay written, so Ctrl-C or a lost driver
leaves a store that a re-run completes.

Ray is imported inside the functions only: the base install does not need it
(``pip install 'mgcl[ray]'``).
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from mgcl.audio.decode import load_source, source_name
from mgcl.backbones import get_backbone, register_backbone
from mgcl.errors import AudioError, MgclError
from mgcl.store.cached import CachedRun, lookup, map_cached, tick
from mgcl.store.features import FeatureStore
from mgcl.util.threads import available_cpus
from mgcl.util.uri import is_uri

log = logging.getLogger(__name__)

#: Times Ray restarts a dead actor, and re-runs a batch whose actor died, before the run fails.
MAX_RESTARTS = 4
MAX_TASK_RETRIES = 4

#: Object store of a Ray instance the engine starts itself (bounded: features are small and
#: stream back; Ray's default is 30 % of the machine's memory).
LOCAL_OBJECT_STORE_BYTES = 512 * 2**20

#: Batches queued per actor (more keeps an actor busy between batches; fewer balances the end).
TASKS_PER_ACTOR = 2

#: Test hook: a file path; the first actor that reaches its second batch creates the file and
#: exits (once per path), so that tests can watch Ray restart it and the run complete.
CRASH_ONCE_ENV = "MGCL_RAY_TEST_CRASH_ONCE"


def require_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray  # noqa: PLC0415  (optional dependency)
        import ray.data  # noqa: F401, PLC0415
    except ImportError:
        raise MgclError("--engine ray needs Ray: pip install 'mgcl[ray]' (or: pip install 'ray[data]')") from None
    return ray


def auth_hint(address: str | None) -> str:
    """What to do when a Ray cluster refuses this process's token (Ray 2.60 turns token
    authentication on by default)."""
    where = f" of the cluster at {address}" if address else ""
    return (
        f"copy the token{where} (`ray get-auth-token` on its head node) to ~/.ray/auth_token, or set "
        "RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH (a cluster started with RAY_AUTH_MODE=disabled needs no token)"
    )


@contextmanager
def connected(address: str | None, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator:
    """Ray, initialised for the block: the running instance when there is one (kept), else the
    cluster at ``address``, else a private instance on this machine with ``num_cpus`` CPUs and a
    bounded object store; what this function started or joined it shuts down or leaves."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=True)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                include_dashboard=False,
                **kwargs,
            )
    except Exception as exc:  # Ray raises many types (ConnectionError, AuthenticationError, RuntimeError)
        ray.shutdown()
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        if "authentication" in text.lower() or "token" in text.lower():
            raise MgclError(f"Ray refused the connection ({text}): {auth_hint(address)}") from None
        if not address:
            raise MgclError(f"cannot start a local Ray instance: {text}") from None
        raise MgclError(
            f"cannot reach the Ray cluster at {address}: {text} (is it up? A cluster with token "
            f"authentication also turns away a client without its token: {auth_hint(address)})"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def local_resources(workers: int | None, cpus_per_worker: float, gpus_per_worker: float) -> dict:
    """``num_cpus`` / ``num_gpus`` of a private Ray instance for ``workers`` workers (None: the
    machine's CPUs; GPUs only when workers use them)."""
    cpus = int(np.ceil(workers * cpus_per_worker)) if workers else available_cpus()
    gpus = int(np.ceil((workers or 1) * gpus_per_worker)) if gpus_per_worker > 0 else None
    return {"num_cpus": max(1, cpus), "num_gpus": gpus}


def default_workers(ray, cpus_per_worker: float, gpus_per_worker: float) -> int:
    """As many actors as the cluster's CPUs (or GPUs, with GPU workers) hold, at least 1."""
    res = ray.cluster_resources()
    if gpus_per_worker > 0:
        return max(1, int(res.get("GPU", 0) // gpus_per_worker))
    return max(1, int(res.get("CPU", 1) // cpus_per_worker))


def backbone_recipe(backbone) -> dict:
    """What an actor needs to build the same backbone: its registry spec when it has one
    (nothing heavy travels), else the object itself (pickled by Ray)."""
    spec = getattr(backbone, "registry_spec", None)
    if spec is not None:
        return {"spec": spec, "backbone": None}
    return {"spec": None, "backbone": backbone}


class _Named:
    """A file as a worker reads it (an absolute ``path`` or a URI) and as errors name it (``name``)."""

    def __init__(self, path: str, name: str):
        self.path, self.name = path, name

    def __str__(self) -> str:
        return self.name


def _load_named(item: _Named, sample_rate: int) -> np.ndarray:
    try:
        return load_source(item.path, sample_rate)  # a URI: read through pyarrow.fs, decoded from memory
    except AudioError as exc:
        raise AudioError(item.name, exc.reason) from None


class BatchEmbedder:
    """The Ray Data callable class: one backbone per actor, built once; each call embeds one
    batch (a row ``{"job": JSON {"i", "path", "name"}}``) and returns one row per clip:
    ``i``, ``error`` ("" when it worked), ``clip`` and ``frames`` (float32 bytes) and ``t``
    (frames)."""

    def __init__(
        self,
        recipe: dict,
        identity: str,
        threads: int,
        device: str,
        crash_marker: str | None = None,
    ):
        torch.set_num_threads(max(1, int(threads)))
        spec = recipe.get("spec")
        if spec is not None:
            name, target, options = spec
            register_backbone(name, target)
            backbone = get_backbone(name, **{**options, "device": device})
        else:
            backbone = recipe["backbone"]
        if backbone.identity != identity:
            raise MgclError(
                f"the backbone built on a Ray worker differs from this one ({backbone.identity} != {identity}): "
                "install the same mgcl, weights and checkpoints on every node"
            )
        self.backbone = backbone
        self.crash_marker = crash_marker
        self.calls = 0

    def _maybe_crash(self) -> None:
        if not self.crash_marker or self.calls < 2:
            return
        try:
            fd = os.open(self.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"actor pid {os.getpid()} exited on purpose\n".encode())
        os.close(fd)
        os._exit(1)

    def encode(self, waves: list[np.ndarray]) -> list:
        """One ``(clip, frames)`` pair per waveform."""
        return self.backbone.encode_audio(waves).split()

    def __call__(self, batch: dict) -> dict:
        outs: dict[str, list] = {"i": [], "error": [], "clip": [], "frames": [], "t": []}
        for job in batch["job"]:
            self.calls += 1
            self._maybe_crash()
            spec = json.loads(job)
            items = [_Named(p, n) for p, n in zip(spec["path"], spec["name"])]
            r = map_cached(
                items,
                self.backbone.sample_rate,
                self.encode,
                batch_size=max(1, len(items)),
                what="backbone",
                key=lambda item: item.name,
                load=_load_named,
            )
            for j, i in enumerate(spec["i"]):
                value = r.values[j]
                outs["i"].append(int(i))
                outs["error"].append(r.errors.get(j, "") if value is None else "")
                clip, frames = value if value is not None else (torch.zeros(0), torch.zeros(0, 0))
                outs["clip"].append(clip.detach().float().contiguous().cpu().numpy().tobytes())
                outs["frames"].append(frames.detach().float().contiguous().cpu().numpy().tobytes())
                outs["t"].append(int(frames.shape[0]))
        return {
            "i": np.asarray(outs["i"], dtype=np.int64),
            "error": np.asarray(outs["error"], dtype=object),
            "clip": np.asarray(outs["clip"], dtype=object),
            "frames": np.asarray(outs["frames"], dtype=object),
            "t": np.asarray(outs["t"], dtype=np.int64),
        }


def jobs(sources: Sequence, todo: list[int], batch_size: int) -> list[dict]:
    """The local engine's batches as dataset rows: ``{"job": JSON {"i", "path", "name"}}``,
    paths absolute (workers do not share this process's working folder), URIs as given."""
    out = []
    for k in range(0, len(todo), batch_size):
        idx = todo[k : k + batch_size]
        spec = {
            "i": idx,
            "path": [sources[i] if is_uri(sources[i]) else os.path.abspath(sources[i]) for i in idx],
            "name": [source_name(sources[i]) for i in idx],
        }
        out.append({"job": json.dumps(spec)})
    return out


def decode_row(clip: bytes, frames: bytes, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An output row's ``(clip (D,), frames (T, D))`` float32 tensors."""
    c = torch.from_numpy(np.frombuffer(clip, dtype=np.float32).copy())
    f = torch.from_numpy(np.frombuffer(frames, dtype=np.float32).copy().reshape(int(t), c.shape[0]))
    return c, f


def embed_sources_ray(
    backbone,
    sources: Sequence,
    store: FeatureStore | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    keep: bool = True,
) -> CachedRun:
    """:func:`mgcl.store.features.embed_sources` on a Ray Data actor pool (module docstring).

    Sources must be files readable by the workers: local paths (a shared filesystem on a
    cluster) or URIs that pyarrow.fs opens on every node (``s3://...``; this process hashes
    them, the workers read and decode them).
    ``address``: the cluster (None: a private instance here, shut down after the run);
    ``workers`` actors with ``cpus_per_worker`` CPUs (torch threads) and ``gpus_per_worker``
    GPUs each. ``keep=False`` (with a store): fill the store only — hits are checked, not
    read, and ``values[i]`` is True instead of the features, so the driver's memory does not
    grow with the archive."""
    t0 = time.perf_counter()
    sources = list(sources)
    bad = next((s for s in sources if isinstance(s, tuple)), None)
    if bad is not None:
        raise MgclError(
            "the ray engine reads files: in-memory waveforms are embedded with the local engine (--engine local)"
        )
    require_ray()
    batch_size = max(1, int(batch_size))
    keep = keep or store is None
    get = None if store is None else store.get if keep else (lambda key: True if key in store else None)
    res, keys, todo = lookup(sources, get, progress)
    if todo:
        threads = max(1, int(cpus_per_worker))
        with connected(address, **local_resources(workers, cpus_per_worker, gpus_per_worker)) as ray:
            _run(
                ray,
                backbone,
                sources,
                store,
                res,
                keys,
                todo,
                batch_size,
                progress,
                keep,
                workers or default_workers(ray, cpus_per_worker, gpus_per_worker),
                cpus_per_worker,
                gpus_per_worker,
                threads,
            )
    res.seconds = time.perf_counter() - t0
    res.frame_step = getattr(backbone, "frame_step", None)
    return res


def _run(ray, backbone, sources, store, res, keys, todo, batch_size, progress, keep, workers, cpus, gpus, threads):
    """Stream ``todo`` through the actor pool into ``res`` and the store."""
    from ray.data import ActorPoolStrategy  # noqa: PLC0415  (optional dependency)

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # mgcl's own bar counts clips (hits included)
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    rows = jobs(sources, todo, batch_size)
    workers = max(1, min(int(workers), len(rows)))
    log.info("ray engine: %d clips in %d batches on %d worker(s)", len(todo), len(rows), workers)
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    with warnings.catch_warnings():  # max_restarts / max_task_retries: deprecated, no replacement before 2.64
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        ds = _map(ds, ActorPoolStrategy, backbone, workers, cpus, gpus, threads)
    try:
        _collect(ds, sources, store, res, keys, progress, keep)
    except ray.exceptions.RayError as exc:  # an actor that cannot start, a node lost for good
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        last = lines[-1].split("MgclError: ", 1)[-1] if lines else type(exc).__name__
        raise MgclError(f"the Ray run failed: {last}") from exc
    for i in todo:
        if res.values[i] is None and i not in res.errors:
            res.errors[i] = f"{source_name(sources[i])}: no result came back from the Ray workers"
            tick(progress, 1)


def _collect(ds, sources, store, res, keys, progress, keep: bool) -> None:
    """The result rows of ``ds`` into ``res`` and the store, as they stream back."""
    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for i, err, clip, frames, t in zip(out["i"], out["error"], out["clip"], out["frames"], out["t"]):
            i = int(i)
            if res.values[i] is not None or i in res.errors:  # a batch re-run after its actor died
                continue
            if err:
                res.errors[i] = str(err)
            else:
                value = decode_row(clip, frames, t)
                res.values[i] = value if keep else True
                res.computed += 1
                if store is not None:
                    store.put(keys[i], *value)
            tick(progress, 1)


def _map(ds, pool, backbone, workers: int, cpus: float, gpus: float, threads: int):
    """``ds`` through a pool of ``workers`` :class:`BatchEmbedder` actors, one batch per call."""
    return ds.map_batches(
        BatchEmbedder,
        batch_size=1,
        batch_format="numpy",
        compute=pool(size=workers, max_tasks_in_flight_per_actor=TASKS_PER_ACTOR),
        fn_constructor_kwargs=dict(
            recipe=backbone_recipe(backbone),
            identity=backbone.identity,
            threads=threads,
            device="cuda" if gpus > 0 else "cpu",
            crash_marker=os.environ.get(CRASH_ONCE_ENV) or None,
        ),
        num_cpus=cpus,
        num_gpus=gpus or None,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_TASK_RETRIES,
    )
