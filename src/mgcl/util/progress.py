"""Progress of long work: a bar on a terminal, a log line every ``every`` seconds elsewhere.

Library code takes a ``progress(n)`` callback; front ends make one with :func:`progress_bar`.
Off a terminal (a script, CI, a pipe), the bar would be invisible: a line
``desc: 120/400 clips (30 %), 6.1 clips/s, ETA 46 s`` goes to the ``mgcl.progress`` logger
instead, at most every ``every`` seconds, and one at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

log = logging.getLogger("mgcl.progress")


class _LogLines:
    """``update(k)`` that logs the count, rate and ETA at most every ``every`` seconds."""

    def __init__(self, total: int, desc: str, unit: str, every: float):
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.done = 0
        self.t0 = self.last = time.monotonic()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        eta = f", ETA {(self.total - self.done) / rate:.0f} s" if rate > 0 and self.done < self.total else ""
        return f"{self.desc}: {self.done}/{self.total} {self.unit}s{share}, {rate:.1f} {self.unit}s/s{eta}"

    def update(self, k: int = 1) -> None:
        self.done += k
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info(self.line())

    def close(self) -> None:
        if self.done and time.monotonic() - self.t0 >= self.every:
            log.info(self.line())


@contextmanager
def progress_bar(
    total: int, desc: str, unit: str = "clip", enabled: bool | None = None, every: float = 10.0
) -> Iterator[Callable[[int], None]]:
    """Yield ``update(k)``: a tqdm bar on stderr when it is a terminal (``enabled``: force
    it on or off), else log lines every ``every`` seconds (logger ``mgcl.progress``)."""
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        lines = _LogLines(total, desc, unit, every)
        try:
            yield lines.update
        finally:
            lines.close()
        return
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()
