"""Masked sampling helpers shared by the property tests of every constraint kind.

``sample_then_complete`` draws tokens from random logits restricted to the mask, then
teacher-forces a shortest accepted completion (found by breadth-first search over the
matcher's byte-level hooks) and checks EOS is allowed at the end. Used for grammars
(tests/test_grammar_sampling.py) and JSON schemas (tests/test_schema_tokens.py).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from constrained.matcher import Constraint
from constrained.vocab import Vocabulary

PRINTABLE_ASCII: tuple[int, ...] = tuple(range(32, 127))
# printable ASCII, tab/newlines and every byte that can occur in UTF-8 text after them
TEXT_BYTES: tuple[int, ...] = PRINTABLE_ASCII + (9, 10, 13) + tuple(range(0x80, 0xF5))


def longest_match_ids(data: bytes, by_bytes: dict[bytes, int], max_len: int) -> list[int]:
    """Greedy longest-match tokenization of ``data`` (tokens of at most ``max_len`` bytes)."""
    ids, pos = [], 0
    while pos < len(data):
        n = max(k for k in range(1, min(max_len, len(data) - pos) + 1) if data[pos:pos + k] in by_bytes)
        ids.append(by_bytes[data[pos:pos + n]])
        pos += n
    return ids


def shortest_completion(c: Constraint, state: Any, alphabet: Sequence[int] = TEXT_BYTES,
                        max_states: int = 20000) -> bytes:
    """Breadth-first search over ``alphabet`` bytes for a shortest accepted completion."""
    m = c.matcher()
    if m._is_accepting(state):
        return b""
    seen = {state}
    queue: deque[tuple[Any, bytes]] = deque([(state, b"")])
    while queue and len(seen) < max_states:
        st, path = queue.popleft()
        for b in alphabet:
            nxt = m._advance_bytes(st, bytes([b]))
            if nxt is None or nxt in seen:
                continue
            if m._is_accepting(nxt):
                return path + bytes([b])
            seen.add(nxt)
            queue.append((nxt, path + bytes([b])))
    raise AssertionError("no completion found: the state is a dead end")


def sample_then_complete(c: Constraint, vocab: Vocabulary, rng: np.random.Generator,
                         by_bytes: dict[bytes, int], *, max_random_tokens: int,
                         stop_probability: float, length_penalty: float, max_token_len: int,
                         alphabet: Sequence[int] = TEXT_BYTES) -> bytes:
    """Random masked tokens (shorter ones favoured by ``length_penalty``) for a random number
    of steps, then a shortest completion teacher-forced token by token (each must be allowed),
    then EOS. Forced bytes must agree with every drawn token."""
    m = c.matcher()
    eos = vocab.eos_token_ids[0]
    out = b""
    for _ in range(int(rng.integers(1, max_random_tokens))):
        mask = m.mask()
        eos_ok = bool(mask[eos])
        mask[eos] = False
        allowed = np.flatnonzero(mask)
        if eos_ok and (rng.random() < stop_probability or not allowed.size):
            break
        assert allowed.size, f"dead end after {out!r}: no token allowed and EOS refused"
        lens = np.fromiter((len(vocab.tokens[t]) for t in allowed), dtype=np.float64)
        tid = int(allowed[int(np.argmax(rng.gumbel(size=allowed.size) - length_penalty * lens))])
        forced = m.forced_bytes()
        piece = vocab.tokens[tid]
        assert piece.startswith(forced) or forced.startswith(piece), (forced, piece)
        m.advance(tid)
        out += piece
    rest = shortest_completion(c, m.state, alphabet)
    for tid in longest_match_ids(rest, by_bytes, max_token_len):
        assert m.mask()[tid], f"completion token {vocab.tokens[tid]!r} masked after {out!r}"
        m.advance(tid)
        out += vocab.tokens[tid]
    assert m.mask()[eos], f"EOS refused after the completed output {out!r}"
    m.advance(eos)
    assert m.is_terminated()
    return out
