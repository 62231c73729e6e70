"""Progress bars on a terminal, silence elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from tqdm.auto import tqdm


@contextmanager
def progress_bar(total: int, desc: str, unit: str = "clip", enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``update(k)``; draws a tqdm bar on stderr only when it is a terminal."""
    show = sys.stderr.isatty() if enabled is None else enabled
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not show, file=sys.stderr, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()
