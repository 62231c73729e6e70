"""Where the backbone runs: the engine of the embedding pass (``--engine local|ray``).

Every engine does the same job with the same answers: each source's content hash, the store's
hits read without decoding, the rest decoded and embedded, every new entry written to the
store (atomically, by this process only) and a :class:`~mgcl.store.cached.CachedRun` with the
same values, errors and counts:

* ``local`` (default): :func:`mgcl.store.features.embed_sources`, one backbone in this process.
* ``ray``: :mod:`mgcl.engines.ray_engine`, a Ray Data actor pool (one backbone per actor, CPU or
  GPU, on this machine or a cluster) that reads and embeds the files; the features stream back
  and this process writes the store. Needs the optional extra ``mgcl[ray]``.

    run = embed_with(Engine("ray", workers=2), backbone, paths, store)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from mgcl.engines import ray_engine
from mgcl.errors import MgclError
from mgcl.store.cached import CachedRun
from mgcl.store.features import FeatureStore, embed_sources

#: The engines, the default first.
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """An engine choice and its resources.

    kind:            ``"local"`` or ``"ray"``.
    address:         Ray only: the cluster (``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``);
                     None starts a private Ray instance on this machine for the run.
    workers:         Ray only: actors, each holding one backbone (None: as many as the cluster's
                     CPUs, or GPUs with ``gpus_per_worker``, allow).
    cpus_per_worker: CPUs reserved per actor; its torch threads (at least 1).
    gpus_per_worker: GPUs per actor (fractions share a GPU); > 0 puts the backbone on CUDA.
    """

    kind: str = "local"
    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    def __post_init__(self):
        if self.kind not in ENGINES:
            raise MgclError(f"unknown engine '{self.kind}' (choose from: {', '.join(ENGINES)})")
        if self.workers is not None and (int(self.workers) != self.workers or self.workers < 1):
            raise MgclError(f"--workers must be a positive integer, got {self.workers}")
        if not self.cpus_per_worker > 0:
            raise MgclError(f"--cpus-per-worker must be positive, got {self.cpus_per_worker}")
        if not self.gpus_per_worker >= 0:
            raise MgclError(f"--gpus-per-worker must be 0 or more, got {self.gpus_per_worker}")

    @property
    def threads(self) -> int:
        """Torch threads of one worker: its CPUs, at least 1."""
        return max(1, int(self.cpus_per_worker))


#: Today's path: one backbone in this process.
LOCAL = Engine()


@contextmanager
def session(engine: Engine | None) -> Iterator[None]:
    """Keep the engine's resources for the block (Ray: one connection or private instance for
    several embedding passes instead of one each); nothing for the local engine."""
    if engine is None or engine.kind == "local":
        yield
        return
    own = ray_engine.local_resources(engine.workers, engine.cpus_per_worker, engine.gpus_per_worker)
    with ray_engine.connected(engine.address, **own):
        yield


def embed_with(
    engine: Engine | None,
    backbone,
    sources: Sequence,
    store: FeatureStore | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    keep: bool = True,
) -> CachedRun:
    """Clip and frame features of ``sources`` through ``store`` with ``engine`` (None: local).

    Same contract as :func:`mgcl.store.features.embed_sources` whatever the engine: values and
    ``errors`` aligned with the inputs, a bad input an error and never an exception.
    ``keep=False`` lets the Ray engine fill the store without holding the features (values
    are then True; an archive of millions of clips does not fill the driver's memory); the
    local engine always keeps them."""
    if engine is None or engine.kind == "local":
        return embed_sources(backbone, sources, store=store, batch_size=batch_size, progress=progress)
    return ray_engine.embed_sources_ray(
        backbone,
        sources,
        store=store,
        batch_size=batch_size,
        progress=progress,
        address=engine.address,
        workers=engine.workers,
        cpus_per_worker=engine.cpus_per_worker,
        gpus_per_worker=engine.gpus_per_worker,
        keep=keep,
    )
