"""Jump-forward decoding: turn the bytes a constraint forces into canonical tokens.

When ``matcher.forced_bytes()`` is non-empty every valid continuation starts with those bytes,
so the model need not choose them. We tokenise the forced text with the model's own tokenizer
(its canonical tokenisation), keep the longest prefix that (a) spells exactly the forced bytes
and (b) the matcher accepts (``validate_tokens``), and drop the last token: it could merge with
what the model writes next (``": "`` + ``John`` -> ``": "John``), so the model chooses it itself.
Anything unusual (tokenizer normalisation, partial UTF-8, special tokens) falls back to normal
decoding, which is always correct.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def utf8_prefix(data: bytes) -> bytes:
    """Longest prefix of ``data`` that is complete, valid UTF-8."""
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError as exc:
        return data[: exc.start]


def forced_tokens(matcher: Any, tokenizer: Any, token_bytes: Sequence[bytes]) -> list[int]:
    """Canonical tokens for the matcher's forced continuation, minus the last one (may be []).

    Does not change the matcher; the caller advances it by the returned tokens.
    """
    forced = utf8_prefix(matcher.forced_bytes())
    if not forced:
        return []
    text = forced.decode("utf-8")
    try:  # never let forced text turn into control tokens (e.g. "<|im_end|>" inside a JSON string)
        ids = list(tokenizer.encode(text, add_bos=False, parse_special=False))
    except TypeError:
        ids = list(tokenizer.encode(text, add_bos=False))
    # keep the prefix whose bytes spell a prefix of the forced bytes, token by token
    spelled = 0
    keep = 0
    for tid in ids:
        if not 0 <= tid < len(token_bytes):
            break
        piece = token_bytes[tid]
        if not piece or forced[spelled : spelled + len(piece)] != piece:
            break
        spelled += len(piece)
        keep += 1
    ids = ids[:keep]
    if len(ids) < 2:
        return []
    ids = ids[:-1]
    accepted = int(matcher.validate_tokens(ids))
    return ids[:accepted]
