"""HistoryTracker: matchers re-derived from whole-sequence histories (beams, drafts, restarts).

Every case compares each row's matcher with a fresh matcher advanced along that row's
history (the obviously-correct reference), through the allowed-token masks.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import constrained
from constrained import TokenRejected, Vocabulary
from constrained.integrations.tracking import HistoryTracker


@pytest.fixture(scope="module")
def setup(load_vocab: Callable[[str], Vocabulary]) -> tuple[Vocabulary, object, dict[bytes, int]]:
    vocab = load_vocab("gpt-2")
    c = constrained.compile_regex(r"(ab|ac|b)[0-9]{0,3}", vocab)
    ids = {vocab.tokens[i]: i for i in vocab.text_token_ids.tolist()}
    return vocab, c, ids


def _check(c: object, tracker_rows: list, histories: list[list[int]]) -> None:
    assert len(tracker_rows) == len(histories)
    for m, h in zip(tracker_rows, histories):
        ref = c.matcher()  # type: ignore[attr-defined]
        for t in h:
            ref.advance(t)
        assert np.array_equal(m.mask(), ref.mask()), h


def test_beam_duplication_swap_and_drop(setup: tuple) -> None:
    vocab, c, ids = setup
    a, b, x, y, z = ids[b"a"], ids[b"b"], ids[b"1"], ids[b"2"], ids[b"3"]
    bb = ids[b"c"]
    tr = HistoryTracker(c, vocab.eos_token_ids)
    sequence = [
        [[], []],
        [[a], [b]],
        [[a, ids[b"b"]], [a, bb]],          # both beams continue from row 0; row 1 ([b]) dropped
        [[a, bb, x], [a, ids[b"b"], y]],    # swapped
        [[a, bb, x, y], [a, bb, x, z], [b]],  # batch grows (a row restarts from scratch)
    ]
    for histories in sequence:
        _check(c, tr.sync(histories), histories)


def test_draft_rejection_rolls_back_and_eos_padding_is_ignored(setup: tuple) -> None:
    vocab, c, ids = setup
    a, one, two = ids[b"a"], ids[b"1"], ids[b"2"]
    eos = vocab.eos_token_ids[0]
    tr = HistoryTracker(c, vocab.eos_token_ids)
    tr.sync([[a, ids[b"b"], one, two]])
    rows = tr.sync([[a, ids[b"b"], two]])  # drafts [1, 2] refused, 2 taken instead
    _check(c, rows, [[a, ids[b"b"], two]])
    rows = tr.sync([[a, ids[b"b"], two, eos, 0, 0]])  # finished, then padded with id 0
    assert rows[0].is_terminated()
    with pytest.raises(TokenRejected, match="row 0"):
        tr.sync([[a, a]])


def test_bounded_rollback_falls_back_to_replay(setup: tuple) -> None:
    vocab, c, ids = setup

    class Bounded:
        """The same constraint, but its matchers cannot roll back at all."""

        vocab = c.vocab

        def matcher(self, max_rollback: int | None = None) -> object:
            return c.matcher(max_rollback=0)

    tr = HistoryTracker(Bounded(), vocab.eos_token_ids)  # type: ignore[arg-type]
    a, b1, b2 = ids[b"a"], ids[b"1"], ids[b"2"]
    tr.sync([[a, ids[b"c"], b1]])
    rows = tr.sync([[a, ids[b"c"], b2]])
    _check(c, rows, [[a, ids[b"c"], b2]])
