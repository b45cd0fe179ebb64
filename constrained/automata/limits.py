"""Resource limits for regex compilation and lazy determinisation.

Every limit raises :class:`~constrained.errors.ConstraintTooComplex` when exceeded, so a
hostile or accidental pattern (``(\\w{100}){100}``) fails fast instead of hanging.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import ConstraintTooComplex


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on automaton size and compile time.

    ``max_states``: DFA states a :class:`LazyDFA` may create over its lifetime.
    ``max_nfa_states``: NFA states (byte + epsilon) one compilation may build.
    ``max_seconds``: wall time of one construction call (NFA build, or a full
    exploration for intersection/complement / prefix checks), and the total time a
    LazyDFA may spend determinising over its lifetime.
    ``max_state_set_total``: NFA states summed over all DFA states' sets (bounds the
    memory of determinising patterns like ``(a?){5000}``).
    """

    max_states: int = 50_000
    max_nfa_states: int = 200_000
    max_seconds: float = 10.0
    max_state_set_total: int = 2_000_000


DEFAULT_LIMITS = Limits()


class Deadline:
    """Wall-clock budget for one construction call; ``check()`` raises when spent."""

    __slots__ = ("_end", "_seconds", "_what")

    def __init__(self, seconds: float, what: str) -> None:
        self._seconds = seconds
        self._end = time.monotonic() + seconds
        self._what = what

    def check(self) -> None:
        """Raise ConstraintTooComplex if the budget is exhausted."""
        if time.monotonic() > self._end:
            raise ConstraintTooComplex(
                f"{self._what} exceeded the time limit of {self._seconds:g} s "
                "(Limits.max_seconds)"
            )
