"""Pausing Python's cyclic garbage collector while a constraint compiles.

Compiling a schema or grammar allocates tens of thousands of short-lived container objects
(regex trees, NFA lists, Earley items) in one burst. With the collector running, young
collections during the burst find most of them still alive and promote them; once a
quarter of the old generation is new, Python runs a *full* collection over the whole
process heap (60-100 ms in a process that has loaded numba and a 128k vocabulary),
either inside the compile or inside some later token mask. Paused, the burst's garbage is
freed by reference counting as usual and nothing is promoted early. Measured on 100
MaskBench schemas (`bench/bench_schema.py` worker, 2026-12-08): full collections 12 -> 3,
time to first mask p50 5.5 -> 4.3 ms.

This touches process-wide interpreter state, so it is done with care: nested and
concurrent pauses are counted under a lock, the collector is re-enabled only by the
pause that disabled it (never when the application had disabled it itself), and
``CONSTRAINED_GC_PAUSE=0`` in the environment turns it off. No collection is forced
afterwards: the next allocation past the threshold runs a young one as usual.
"""
from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: read once: ``CONSTRAINED_GC_PAUSE=0`` leaves the collector alone
ENABLED = os.environ.get("CONSTRAINED_GC_PAUSE", "1") != "0"


class _PauseCount:
    """How many pauses are open, and whether the outermost one disabled the collector."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.resume = False


_COUNT = _PauseCount()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the body with the cyclic collector disabled (see the module docstring)."""
    if not ENABLED:
        yield
        return
    with _COUNT.lock:
        if _COUNT.depth == 0:
            _COUNT.resume = gc.isenabled()
            if _COUNT.resume:
                gc.disable()
        _COUNT.depth += 1
    try:
        yield
    finally:
        with _COUNT.lock:
            _COUNT.depth -= 1
            if _COUNT.depth == 0 and _COUNT.resume:
                _COUNT.resume = False
                gc.enable()
