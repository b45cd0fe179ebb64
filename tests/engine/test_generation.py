"""Stop conditions and streaming of engine.generation, driven by a scripted stand-in model."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engine.generation import generate_text, stream_text

PIECES = [b"Hel", b"lo", b" wor", b"ld", b"\n", b"\n", b"B", b"ye", b"\xe2\x82", b"\xac", b"!", b"<eos>"]
EOS = len(PIECES) - 1


class _Tok:
    token_bytes = PIECES
    eos_token_ids = (EOS,)
    bos_token_id = None
    kind = "bpe"
    vocab_size = len(PIECES)

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        return [0]


class _Session:
    """Emits token i+1 after token i (logits one-hot), so generation replays PIECES."""

    def __init__(self, last: int) -> None:
        self.logits = self._onehot(last + 1)

    @staticmethod
    def _onehot(i: int) -> np.ndarray:
        x = np.full((1, len(PIECES)), -10.0, dtype=np.float32)
        x[0, min(i, EOS)] = 10.0
        return x

    def step(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        self.logits = self._onehot(rows[0][-1] + 1)
        return self.logits


class _Model:
    tokenizer = _Tok()

    def start(self, prompts: Sequence[Sequence[int]], max_new_tokens: int = 0) -> _Session:
        return _Session(prompts[0][-1])


FULL = "lo world\n\nBye€!"  # prompt is token 0 ("Hel"); EOS is not part of the text


def test_runs_to_eos() -> None:
    assert generate_text(_Model(), [0], max_tokens=50) == FULL  # type: ignore[arg-type]


def test_max_tokens() -> None:
    assert generate_text(_Model(), [0], max_tokens=3) == "lo world"  # type: ignore[arg-type]


@pytest.mark.parametrize("stop", ["\n\n", "orl", "€", "Bye€!", "zzz"])
def test_stop_strings(stop: str) -> None:
    expected = FULL[: FULL.index(stop)] if stop in FULL else FULL
    assert generate_text(_Model(), [0], max_tokens=50, stop=[stop]) == expected  # type: ignore[arg-type]
    pieces = list(stream_text(_Model(), [0], max_tokens=50, stop=[stop]))  # type: ignore[arg-type]
    assert "".join(pieces) == expected
    assert all(stop not in p for p in pieces)


def test_earliest_of_several_stops() -> None:
    assert generate_text(_Model(), [0], max_tokens=50, stop=["Bye", "\n"]) == "lo world"  # type: ignore[arg-type]


def test_stream_yields_incrementally_and_whole_characters() -> None:
    pieces = list(stream_text(_Model(), [0], max_tokens=50))  # type: ignore[arg-type]
    assert len(pieces) >= 6 and "".join(pieces) == FULL
    assert "\ufffd" not in "".join(pieces)  # the split euro sign is joined before it is emitted
