"""Constraint / Matcher base classes: the per-sequence matching API over opaque states.

A compiled :class:`Constraint` is immutable and shared by every sequence; its
``matcher()`` is a cheap per-sequence :class:`Matcher`. The base class implements the
whole public API (bitmask filling, EOS rules, rollback, validation, errors) over a
stack of IMMUTABLE constraint-specific states; a subclass only supplies five hooks:

``_allowed_words(state) -> int32[ceil(W/32)]``
    Bitmask words of the NON-EOS tokens allowed next (the base class adds EOS when
    accepting). May be a cached read-only array; never modified by the base class.
    Bits of special tokens and padding ids (``>= len(vocab.tokens)``) must be clear.
``_advance_token(state, token_id) -> state | None``
    The state after a non-special token, or ``None`` if the token is not allowed.
    Defaults to ``_advance_bytes(state, vocab.tokens[token_id])``.
``_advance_bytes(state, data) -> state | None``
    The state after raw bytes (may end inside a UTF-8 character), ``None`` when no
    accepted string starts with what was consumed plus ``data``.
``_is_accepting(state) -> bool``
    Whether the bytes consumed so far form a complete accepted output.
``_forced_bytes(state) -> bytes``
    Bytes every accepted continuation starts with (``b""`` when there is a choice).

States must never be mutated after they are returned: rollback is a pop of the stack
and ``copy()`` shares states between matchers.
"""
from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, Generic, Iterable, TypeVar

import numpy as np

from .errors import (
    BitmaskShapeError, InvalidTokenId, MatcherTerminated, RollbackError, TokenRejected,
)
from .masks.bitmask import bitmask_to_bool, bitmask_words
from .vocab import Vocabulary

__all__ = ["Constraint", "Matcher"]

S = TypeVar("S")


class Constraint(ABC):
    """A compiled constraint over one vocabulary: immutable, thread-safe, shareable."""

    vocab: Vocabulary

    @abstractmethod
    def matcher(self, max_rollback: int | None = None) -> "Matcher[Any]":
        """A fresh per-sequence matcher at the start of the output.

        ``max_rollback`` bounds how many tokens can be rolled back (None: unbounded).
        """

    def accepts(self, data: bytes | str) -> bool:
        """String-level full match: whether ``data`` (str is UTF-8 encoded) is an accepted output."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        m = self.matcher(max_rollback=0)
        state = m._advance_bytes(m._initial, bytes(data))
        return state is not None and bool(m._is_accepting(state))


class Matcher(ABC, Generic[S]):
    """Per-sequence matching state over a stack of immutable constraint states.

    Public API: ``fill_bitmask``, ``mask``, ``advance``, ``try_advance``,
    ``validate_tokens``, ``rollback``, ``is_accepting``, ``is_terminated``,
    ``forced_bytes``, ``reset``, ``copy``. Contracts: EOS is allowed exactly when the
    output is accepted; advancing EOS terminates (further EOS advances are no-ops that
    do not count for rollback); any other token after termination raises
    ``MatcherTerminated``; a rejected token raises ``TokenRejected`` and changes nothing;
    ids outside ``[0, logit_width)`` raise ``InvalidTokenId``; special and padding ids
    are never allowed.
    """

    def __init__(self, constraint: Constraint, initial_state: S,
                 max_rollback: int | None = None) -> None:
        if max_rollback is not None and max_rollback < 0:
            raise RollbackError(f"max_rollback must be >= 0 or None, got {max_rollback}")
        vocab = constraint.vocab
        self._constraint = constraint
        self._vocab = vocab
        self._n_tokens = len(vocab.tokens)
        self._width = vocab.logit_width
        self._n_words = bitmask_words(vocab.logit_width)
        self._eos = frozenset(vocab.eos_token_ids)
        self._special = vocab.special_token_ids
        # (word index, int32 bit value) for every EOS id
        self._eos_bits = [(e >> 5, int(np.array(1 << (e & 31), dtype=np.uint32).view(np.int32)))
                          for e in vocab.eos_token_ids]
        self._initial = initial_state
        self._max_rollback = max_rollback
        self._stack: deque[S] = deque([initial_state],
                                      maxlen=None if max_rollback is None else max_rollback + 1)
        self._eos_at = -1  # stack index of the EOS entry, -1 while not terminated

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _allowed_words(self, state: S) -> np.ndarray:
        """Bitmask words (int32[ceil(W/32)]) of the non-EOS tokens allowed in ``state``."""

    def _advance_token(self, state: S, token_id: int) -> S | None:
        """State after the non-special token ``token_id``; None if not allowed."""
        return self._advance_bytes(state, self._vocab.tokens[token_id])

    @abstractmethod
    def _advance_bytes(self, state: S, data: bytes) -> S | None:
        """State after the bytes ``data``; None if no accepted output continues this way."""

    @abstractmethod
    def _is_accepting(self, state: S) -> bool:
        """Whether the output consumed up to ``state`` is complete and accepted."""

    @abstractmethod
    def _forced_bytes(self, state: S) -> bytes:
        """Bytes that every accepted continuation from ``state`` starts with."""

    # ------------------------------------------------------------------ public API
    @property
    def constraint(self) -> Constraint:
        """The compiled constraint this matcher follows."""
        return self._constraint

    @property
    def vocab(self) -> Vocabulary:
        return self._vocab

    @property
    def max_rollback(self) -> int | None:
        """How many tokens ``rollback`` can undo at most (None: unbounded)."""
        return self._max_rollback

    @property
    def state(self) -> S:
        """The current (immutable) constraint state; for debugging and subclasses."""
        return self._stack[-1]

    def is_terminated(self) -> bool:
        """Whether EOS has been advanced."""
        return self._eos_at >= 0

    def is_accepting(self) -> bool:
        """Whether the output so far is complete (EOS is allowed now)."""
        return self._eos_at >= 0 or bool(self._is_accepting(self._stack[-1]))

    def forced_bytes(self) -> bytes:
        """Bytes every valid continuation starts with (for jump-forward decoding)."""
        if self._eos_at >= 0:
            return b""
        return self._forced_bytes(self._stack[-1])

    def fill_bitmask(self, bitmask: np.ndarray, index: int = 0) -> None:
        """Write the allowed next tokens into ``bitmask`` (``int32[W32]`` or row ``index`` of ``[batch, W32]``)."""
        row = self._row(bitmask, index)
        if self._eos_at >= 0:
            row[:] = 0
        else:
            state = self._stack[-1]
            row[:] = self._allowed_words(state)
            if not self._is_accepting(state):
                return
        for word, bit in self._eos_bits:
            row[word] |= bit

    def mask(self) -> np.ndarray:
        """Allowed next tokens as ``bool[logit_width]`` (EOS included when accepting)."""
        row = np.zeros(self._n_words, dtype=np.int32)
        self.fill_bitmask(row)
        return bitmask_to_bool(row, self._width)

    def advance(self, token_id: int) -> None:
        """Consume one token; raises ``TokenRejected`` (state unchanged) if it is not allowed."""
        tid = self._check_id(token_id)
        if self._eos_at >= 0:
            if tid in self._eos:
                return
            raise MatcherTerminated(f"token {tid} advanced after EOS: the matcher is terminated")
        state = self._stack[-1]
        nxt = self._next(state, tid)
        if nxt is None:
            raise TokenRejected(self._rejection(state, tid))
        self._stack.append(nxt)
        if tid in self._eos:
            self._eos_at = len(self._stack) - 1

    def try_advance(self, token_id: int) -> bool:
        """Like :meth:`advance` but returns False instead of raising ``TokenRejected``."""
        try:
            self.advance(token_id)
        except MatcherTerminated:
            return False
        except TokenRejected:
            return False
        return True

    def validate_tokens(self, token_ids: Iterable[int]) -> int:
        """How many leading tokens of ``token_ids`` would be accepted in a row (no state change)."""
        state = self._stack[-1]
        terminated = self._eos_at >= 0
        n = 0
        for token_id in token_ids:
            tid = self._check_id(token_id)
            if terminated:
                if tid not in self._eos:
                    break
            else:
                nxt = self._next(state, tid)
                if nxt is None:
                    break
                state = nxt
                terminated = tid in self._eos
            n += 1
        return n

    def rollback(self, n: int = 1) -> None:
        """Undo the last ``n`` advanced tokens (EOS included)."""
        n = operator.index(n)
        if n < 0:
            raise RollbackError(f"cannot roll back a negative number of tokens ({n})")
        available = len(self._stack) - 1
        if n > available:
            bound = "" if self._max_rollback is None else f" (max_rollback={self._max_rollback})"
            raise RollbackError(f"cannot roll back {n} tokens: only {available} can be undone{bound}")
        for _ in range(n):
            self._stack.pop()
        if self._eos_at >= len(self._stack):
            self._eos_at = -1

    def reset(self) -> None:
        """Back to the start of the output."""
        self._stack.clear()
        self._stack.append(self._initial)
        self._eos_at = -1

    def copy(self) -> "Matcher[S]":
        """An independent matcher at the same position (states are shared, being immutable)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._stack = deque(self._stack, maxlen=self._stack.maxlen)
        return clone

    # ------------------------------------------------------------------ helpers
    def _check_id(self, token_id: int) -> int:
        try:
            tid = operator.index(token_id)
        except TypeError:
            raise InvalidTokenId(f"token id must be an integer, got {type(token_id).__name__}") from None
        if not 0 <= tid < self._width:
            raise InvalidTokenId(f"token id {tid} outside [0, {self._width})")
        return tid

    def _next(self, state: S, tid: int) -> S | None:
        """State after token ``tid`` from ``state`` (EOS keeps the state), None if rejected."""
        if tid in self._eos:
            return state if self._is_accepting(state) else None
        if tid >= self._n_tokens or tid in self._special:
            return None
        return self._advance_token(state, tid)

    def _rejection(self, state: S, tid: int) -> str:
        if tid in self._eos:
            return f"EOS token {tid} rejected: the output is not complete yet"
        if tid >= self._n_tokens:
            return f"token {tid} is a padding id (vocabulary has {self._n_tokens} tokens)"
        if tid in self._special:
            return f"token {tid} ({self._vocab.tokens[tid]!r}) is a special token"
        return f"token {tid} ({self._vocab.tokens[tid]!r}) is not allowed here"

    def _row(self, bitmask: Any, index: int) -> np.ndarray:
        if not isinstance(bitmask, np.ndarray) or bitmask.dtype != np.int32:
            raise BitmaskShapeError(
                f"bitmask must be a numpy int32 array, got "
                f"{getattr(bitmask, 'dtype', type(bitmask).__name__)}")
        if bitmask.ndim == 1 and index == 0 and bitmask.shape[0] == self._n_words:
            return bitmask
        if bitmask.ndim == 2 and bitmask.shape[1] == self._n_words:
            if not 0 <= index < bitmask.shape[0]:
                raise BitmaskShapeError(f"row index {index} outside a batch of {bitmask.shape[0]}")
            return bitmask[index]
        raise BitmaskShapeError(
            f"bitmask shape {bitmask.shape} (index {index}) does not fit logit width {self._width}: "
            f"expected ({self._n_words},) or (batch, {self._n_words})")
