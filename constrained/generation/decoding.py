"""Incremental, UTF-8-safe detokenisation: token byte strings in, complete text pieces out.

A token may end inside a multi-byte UTF-8 character; the incremental decoder keeps the
incomplete tail until the next token completes it, so streamed pieces never split a character.
"""
from __future__ import annotations

import codecs


class IncrementalText:
    """Accumulates token bytes and hands out newly completed text."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._bytes = bytearray()
        self._text: list[str] = []

    def push(self, data: bytes) -> str:
        """Add bytes; return the text they complete (possibly empty)."""
        self._bytes += data
        piece = self._decoder.decode(data)
        if piece:
            self._text.append(piece)
        return piece

    def flush(self) -> str:
        """End of output: decode any dangling incomplete bytes (as U+FFFD)."""
        piece = self._decoder.decode(b"", final=True)
        if piece:
            self._text.append(piece)
        return piece

    @property
    def data(self) -> bytes:
        """All bytes pushed so far."""
        return bytes(self._bytes)

    @property
    def text(self) -> str:
        """All text completed so far."""
        return "".join(self._text)
