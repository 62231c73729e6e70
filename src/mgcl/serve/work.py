"""CPU-bound work of the service on a bounded pool: a queue in front of ``workers`` threads.

Requests never run torch on the event loop and never in unbounded numbers: each one is a
job put on a queue of at most ``queue`` waiting jobs, taken by one of ``workers`` threads
(torch's intra-op thread count is set once, so ``workers x threads`` stays within the
CPUs). A full queue refuses at once with :class:`~mgcl.serve.errors.Busy` (HTTP 503 and a
``Retry-After`` estimated from the mean job time). Fits run as tracked :class:`Job` s the page
polls for progress.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from mgcl.serve.errors import Busy, NotFound

log = logging.getLogger(__name__)


class WorkerPool:
    """``submit(fn, *args)`` -> a Future run by one of ``workers`` daemon threads; at most
    ``queue_size`` jobs wait, past that :class:`Busy`. ``torch_threads``: torch's intra-op
    threads, set once when the pool starts (None: left alone)."""

    def __init__(self, workers: int = 1, queue_size: int = 16, torch_threads: int | None = None):
        self.workers = max(1, int(workers))
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_size)))
        self._mean = 1.0  # seconds per job, a running mean for Retry-After
        self._lock = threading.Lock()
        self.running = 0
        self.done = 0
        if torch_threads:
            import torch  # noqa: PLC0415  (third-party; the service only)

            torch.set_num_threads(int(torch_threads))
        self._threads = [
            threading.Thread(target=self._loop, name=f"mgcl-serve-worker-{i}", daemon=True) for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: mean job time x (waiting + running) / workers."""
        with self._lock:
            backlog = self._queue.qsize() + self.running
            return max(1, math.ceil(self._mean * backlog / self.workers))

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        fut: Future = Future()
        try:
            self._queue.put_nowait((fn, args, kwargs, fut))
        except queue.Full:
            raise Busy(
                f"the server is busy ({self._queue.maxsize} requests waiting): try again shortly",
                self.retry_after(),
            ) from None
        return fut

    def _loop(self) -> None:
        while True:
            fn, args, kwargs, fut = self._queue.get()
            if not fut.set_running_or_notify_cancel():
                continue
            with self._lock:
                self.running += 1
            t0 = time.perf_counter()
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the request that waits for it
                fut.set_exception(exc)
            finally:
                dt = time.perf_counter() - t0
                with self._lock:
                    self.running -= 1
                    self.done += 1
                    self._mean = 0.8 * self._mean + 0.2 * dt


@dataclass
class Job:
    """A fit the page follows: status queued -> running -> done | failed, the current
    ``stage`` in words, ``done`` of ``total`` items, the model's summary or the error."""

    id: str
    kind: str
    name: str
    status: str = "queued"
    stage: str = "waiting for a worker"
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str | None = None
    error_status: int | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def update(self, stage: str, done: int = 0, total: int = 0) -> None:
        self.status, self.stage, self.done, self.total = "running", stage, int(done), int(total)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.name,
            "status": self.status,
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "result": self.result,
            "error": self.error,
            "error_status": self.error_status,
        }


class Jobs:
    """The last ``keep`` jobs by id (older finished ones are forgotten)."""

    def __init__(self, keep: int = 200):
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def new(self, kind: str, name: str) -> Job:
        job = Job(uuid.uuid4().hex, kind, name)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job '{job_id[:40]}'")
        return job

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
