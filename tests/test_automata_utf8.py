"""UTF-8 range splitting and character classes, exhaustively over all code points.

Every scalar value is encoded and run through the DFA column by column with
``step_many``; the reference is Python ``re.fullmatch`` on the one-character string.
Invalid byte sequences (surrogates, overlongs, out of range, truncated) are rejected.
"""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from constrained.automata import DEAD, LazyDFA, parse_regex, utf8_ranges_node
from constrained.automata.utf8 import normalize_ranges

SCALARS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def _encoded() -> tuple[np.ndarray, np.ndarray]:
    """(bytes padded to 4 columns, lengths) for every scalar value."""
    raw = "".join(map(chr, SCALARS)).encode("utf-32-le")
    cps = np.frombuffer(raw, dtype=np.uint32).astype(np.int64)
    lengths = 1 + (cps >= 0x80) + (cps >= 0x800) + (cps >= 0x10000)
    out = np.zeros((len(cps), 4), dtype=np.uint8)
    one, two, three, four = (lengths == n for n in (1, 2, 3, 4))
    out[one, 0] = cps[one]
    out[two, 0] = 0xC0 | (cps[two] >> 6)
    out[two, 1] = 0x80 | (cps[two] & 0x3F)
    out[three, 0] = 0xE0 | (cps[three] >> 12)
    out[three, 1] = 0x80 | ((cps[three] >> 6) & 0x3F)
    out[three, 2] = 0x80 | (cps[three] & 0x3F)
    out[four, 0] = 0xF0 | (cps[four] >> 18)
    out[four, 1] = 0x80 | ((cps[four] >> 12) & 0x3F)
    out[four, 2] = 0x80 | ((cps[four] >> 6) & 0x3F)
    out[four, 3] = 0x80 | (cps[four] & 0x3F)
    return out, lengths


ENCODED, LENGTHS = _encoded()
CPS = np.array(SCALARS, dtype=np.int64)
ALL_TEXT = "".join(map(chr, SCALARS))


def _python_matches(pattern: str) -> np.ndarray:
    """Per scalar: does ``re`` match it as a one-character string? (one C-speed pass:
    a one-character pattern replaces exactly the characters it matches; two different
    sentinels tell a match from a character equal to the sentinel)."""
    rx = re.compile(pattern)
    hits = []
    for sentinel in ("\x00", "\x01"):
        out = rx.sub(sentinel, ALL_TEXT)
        assert len(out) == len(ALL_TEXT)
        arr = np.frombuffer(out.encode("utf-32-le"), dtype=np.uint32)
        hits.append(arr == ord(sentinel))
    return hits[0] & hits[1]


def _accepts_all_scalars(dfa: LazyDFA) -> np.ndarray:
    states = np.full(len(SCALARS), dfa.start, dtype=np.int32)
    for col in range(4):
        active = LENGTHS > col
        states[active] = dfa.step_many(states[active], ENCODED[active, col])
    return dfa.is_accepting_many(states)


def test_reference_helper_agrees_with_fullmatch() -> None:
    got = _python_matches(r"(?i)[\w\x00]")
    rx = re.compile(r"(?i)[\w\x00]")
    for i in random.Random(2).sample(range(len(SCALARS)), 5000) + [0, 1]:
        assert got[i] == (rx.fullmatch(chr(SCALARS[i])) is not None)


def test_encoder_matches_python() -> None:
    for i in random.Random(1).sample(range(len(SCALARS)), 2000):
        assert bytes(ENCODED[i, : LENGTHS[i]]) == chr(SCALARS[i]).encode()


@pytest.mark.parametrize("pattern", [
    r"\w", r"\d", r"\s", r"\W", r".", r"(?s).", r"[^a-z\d]", r"(?i)k", r"(?i)[^\W\d_]",
    r"(?i)[a-zß-ÿ\u0100-\u017f]", r"(?a)\w", r"(?ai)[k-s]", r"(?i)ǅ", r"[\u07ff-\u0801\uffff\U00010000]",
])
def test_single_character_classes_exhaustive(pattern: str) -> None:
    dfa = LazyDFA([parse_regex(pattern)])
    got = _accepts_all_scalars(dfa)
    expected = _python_matches(pattern)
    bad = np.flatnonzero(got != expected)
    assert not len(bad), [hex(SCALARS[i]) for i in bad[:10]]


def test_random_range_sets() -> None:
    rng = random.Random(7)
    for _ in range(8):
        points = sorted(rng.sample(range(0x110000), 2 * rng.randint(1, 6)))
        ranges = normalize_ranges(list(zip(points[0::2], points[1::2])))
        dfa = LazyDFA([utf8_ranges_node(ranges)])
        got = _accepts_all_scalars(dfa)
        expected = np.zeros(len(CPS), dtype=bool)
        for lo, hi in ranges:
            expected |= (CPS >= lo) & (CPS <= hi)
        assert np.array_equal(got, expected), ranges


@pytest.mark.parametrize("data", [
    b"\xed\xa0\x80", b"\xed\xbf\xbf",  # surrogates
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xf0\x80\x80\x80",  # overlong
    b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff",  # beyond U+10FFFF / never valid
    b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98",  # stray continuation / truncated
])
def test_invalid_utf8_is_dead_or_rejected(data: bytes) -> None:
    dfa = LazyDFA([parse_regex(r"(?s).*")])
    state = dfa.walk(dfa.start, data)
    assert not dfa.is_accepting(state)
    if len(data) > 1 and data not in (b"\xe2\x82", b"\xf0\x9f\x98"):
        assert state == DEAD


def test_case_insensitive_literals_for_every_cased_character() -> None:
    """``(?i)c`` for every cased code point: our code-point set equals what ``re``
    matches among all characters that could match (cased ones and their lower-case
    images; anything else is not a case variant of anything)."""
    import _sre

    from constrained.automata.charsets import literal_ranges

    cased = [cp for cp in SCALARS if _sre.unicode_iscased(cp)]
    universe = sorted(set(cased) | {_sre.unicode_tolower(cp) for cp in cased})
    text = "".join(map(chr, universe))
    uni = np.array(universe)
    mismatches = []
    for cp in cased:
        ranges = literal_ranges(cp, re.IGNORECASE | re.UNICODE)
        ours = np.zeros(len(uni), dtype=bool)
        outside = 0
        for lo, hi in ranges:
            ours |= (uni >= lo) & (uni <= hi)
            outside += (hi - lo + 1) - int(((uni >= lo) & (uni <= hi)).sum())
        rx = re.compile("(?i)" + re.escape(chr(cp)))
        expected = np.zeros(len(uni), dtype=bool)
        for m in rx.finditer(text):
            expected[m.start()] = True
        if outside or not np.array_equal(ours, expected):
            mismatches.append(hex(cp))
    assert not mismatches, mismatches[:20]
