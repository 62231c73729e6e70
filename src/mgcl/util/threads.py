"""CPU threads: fast alone, and polite beside other work.

Measured facts (2 cores, other busy processes beside; ``benchmarks/first_hour.py``):

* OpenMP's default wait policy lets idle worker threads spin; with other processes on the
  cores, every parallel region then waits for a descheduled spinner: mgcl_f's fit on 24 clips
  took 87-128 s with torch's 2 threads, 19 s with ``OMP_WAIT_POLICY=PASSIVE`` (and 17 s on one
  thread). The variable must be set before torch loads its OpenMP runtime, so the command line
  calls :func:`quiet_openmp` before anything imports torch.
* Fitting a few-shot method moves small tensors: one thread is as fast as several, and never
  oversubscribes the machine (:func:`torch_threads` around fits).
* The same holds for the BLAS under numpy / scipy / scikit-learn (the logistic regressions that
  initialise mgcl_f's head): OpenBLAS's threads busy-wait, and beside other busy processes one
  averaged logistic regression on 640 x 1024 rows took 12.6-14.4 s with its 2 threads and
  0.36-0.44 s with one (three interleaved rounds). :func:`torch_threads` limits them too.

Nothing here imports torch at module level.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def quiet_openmp() -> None:
    """Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), unless
    the user set a policy. Call before torch is imported (later it has no effect)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers restrict)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads and at most ``n`` BLAS / OpenMP threads
    in numpy, scipy and scikit-learn (threadpoolctl), then restore the previous counts."""
    import torch  # noqa: PLC0415  (this module stays importable before torch: see quiet_openmp)
    from threadpoolctl import threadpool_limits  # noqa: PLC0415  (ships with scikit-learn)

    n = max(1, int(n))
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
