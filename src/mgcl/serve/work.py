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
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from mgcl.serve.errors import Busy, NotFound

log = logging.getLogger(__name__)


@dataclass
class _Task:
    fn: Callable | None
    args: tuple
    future: Future
    key: object = None  # batchable tasks: same key -> may run together
    size: int = 1  # clips it carries (a batch holds at most ``max_batch`` clips)


class WorkerPool:
    """``submit(fn, *args)`` -> a Future run by one of ``workers`` daemon threads; at most
    ``queue_size`` jobs wait, past that :class:`Busy`. ``torch_threads``: torch's intra-op
    threads, set once when the pool starts (None: left alone).

    ``submit_batchable(key, item, run_many, size)``: jobs of the same ``key`` waiting in the
    queue are taken together by one worker, up to ``max_batch`` clips, and
    ``run_many(items) -> [result or exception, ...]`` runs them at once (the predictions of
    concurrent requests for one model share backbone forwards). A request on its way (its
    upload still being read: :meth:`arriving`) is waited for, at most ``linger`` seconds,
    before a batch of its key starts: a lone client never waits, concurrent ones batch."""

    def __init__(
        self,
        workers: int = 1,
        queue_size: int = 16,
        torch_threads: int | None = None,
        max_batch: int = 16,
        linger: float = 0.05,
    ):
        self.workers = max(1, int(workers))
        self.queue_size = max(1, int(queue_size))
        self.max_batch = max(1, int(max_batch))
        self.linger = max(0.0, float(linger))
        self._arriving: dict = {}  # key -> requests being received that will join that key
        self._items: deque[_Task] = deque()
        self._cv = threading.Condition()
        self._mean = 1.0  # seconds per job, a running mean for Retry-After
        self.running = 0
        self.done = 0
        self.batches: list[int] = []  # tasks per batch run (the last 1000)
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
        with self._cv:
            return len(self._items)

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: mean job time x (waiting + running) / workers."""
        with self._cv:
            backlog = len(self._items) + self.running
            return max(1, math.ceil(self._mean * backlog / self.workers))

    def _put(self, task: _Task) -> Future:
        with self._cv:
            if len(self._items) >= self.queue_size:
                backlog = len(self._items) + self.running
                raise Busy(
                    f"the server is busy ({len(self._items)} requests waiting): try again shortly",
                    math.ceil(self._mean * backlog / self.workers),
                )
            self._items.append(task)
            self._cv.notify_all()
        return task.future

    def submit(self, fn: Callable, *args) -> Future:
        return self._put(_Task(fn, args, Future()))

    def submit_batchable(self, key, item, run_many: Callable, size: int = 1, arrived: bool = False) -> Future:
        """Queue a batchable job; ``arrived``: it is the request announced by :meth:`arriving`."""
        try:
            return self._put(_Task(run_many, (item,), Future(), key=key, size=max(1, int(size))))
        finally:
            if arrived:
                self.arriving(key, -1)

    def arriving(self, key, delta: int) -> None:
        """A request for ``key`` started (+1) or stopped (-1) being received."""
        with self._cv:
            n = self._arriving.get(key, 0) + int(delta)
            if n > 0:
                self._arriving[key] = n
            else:
                self._arriving.pop(key, None)
            self._cv.notify_all()

    def stats(self) -> dict:
        with self._cv:
            b = self.batches
            return {
                "waiting": len(self._items),
                "running": self.running,
                "done": self.done,
                "batches": len(b),
                "mean_batch": round(sum(b) / len(b), 2) if b else None,
            }

    def _take(self) -> list[_Task]:
        """The next task, with the waiting tasks of its key when it is batchable."""
        with self._cv:
            while not self._items:
                self._cv.wait()
            first = self._items.popleft()
            tasks = [first]
            if first.key is not None:
                total = first.size
                deadline = time.monotonic() + self.linger
                while True:
                    for t in list(self._items):
                        if t.key == first.key and total + t.size <= self.max_batch:
                            self._items.remove(t)
                            tasks.append(t)
                            total += t.size
                    left = deadline - time.monotonic()
                    if total >= self.max_batch or left <= 0 or not self._arriving.get(first.key):
                        break
                    self._cv.wait(left)
            self.running += 1
            return tasks

    def _loop(self) -> None:
        while True:
            tasks = [t for t in self._take() if t.future.set_running_or_notify_cancel()]
            t0 = time.perf_counter()
            try:
                if not tasks:
                    continue
                if tasks[0].key is None:
                    try:
                        tasks[0].future.set_result(tasks[0].fn(*tasks[0].args))
                    except BaseException as exc:  # handed to the request that waits for it
                        tasks[0].future.set_exception(exc)
                    continue
                try:
                    outcomes = list(tasks[0].fn([t.args[0] for t in tasks]))
                except BaseException as exc:
                    outcomes = [exc] * len(tasks)
                for t, out in zip(tasks, outcomes):
                    if isinstance(out, BaseException):
                        t.future.set_exception(out)
                    else:
                        t.future.set_result(out)
            finally:
                dt = time.perf_counter() - t0
                with self._cv:
                    self.running -= 1
                    self.done += len(tasks)
                    if tasks:
                        self.batches = (self.batches + [len(tasks)])[-1000:]
                        self._mean = 0.8 * self._mean + 0.2 * dt / len(tasks)


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
