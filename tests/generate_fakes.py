"""Test doubles for generation tests: a tiny LM-protocol model and a brute-force reference matcher.

``FakeModel`` follows the LM protocol (tokenizer.token_bytes / encode / decode / special ids /
chat template, logit_width, start/step sessions) with pseudo-random logits that depend only on
the token history, and counts forward passes. ``SetMatcher`` is an independent, obviously-correct
matcher for a finite set of strings (used to test the decoding loop before/besides the real one).
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

BASE_TOKENS: list[bytes] = (
    [bytes([b]) for b in range(32, 127)]
    + [b"\n", "é".encode()[:1], "é".encode()[1:]]
    + [b'{"', b'":', b' "', b'",', b'"}', b"name", b"age", b"yes", b"no", b"John", b"Jo", b"hn",
       b"ab", b"abc", b"abcd", b"  ", b"12", b"123", "é".encode(), b"\xf0\x9f\x98", b"\x80"]
)
SPECIALS = [b"<s>", b"</s>", b"<|im_start|>", b"<|im_end|>"]


class FakeTokenizer:
    """Greedy longest-match tokenizer over BASE_TOKENS; specials follow the base tokens."""

    def __init__(self, chat: bool = True) -> None:
        self.token_bytes: list[bytes] = BASE_TOKENS + SPECIALS
        n = len(BASE_TOKENS)
        self.bos_token_id = n
        self.eos_token_ids = (n + 1, n + 3)
        self.special_ids = frozenset(range(n, n + len(SPECIALS)))
        self.chat_template = "fake" if chat else None
        self._lookup = {t: i for i, t in enumerate(BASE_TOKENS)}
        self._longest = max(len(t) for t in BASE_TOKENS)

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        data = text.encode()
        ids = [self.bos_token_id] if add_bos else []
        pos = 0
        while pos < len(data):
            for size in range(min(self._longest, len(data) - pos), 0, -1):
                tid = self._lookup.get(data[pos : pos + size])
                if tid is not None:
                    ids.append(tid)
                    pos += size
                    break
            else:
                raise ValueError(f"cannot tokenise byte {data[pos]!r}")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(self.token_bytes[i] for i in ids if i not in self.special_ids).decode(errors="replace")

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        body = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return body + ("assistant: " if add_generation_prompt else "")


def fake_logits(ids: Sequence[int], width: int) -> np.ndarray:
    """Deterministic pseudo-random logits that depend on the whole history."""
    seed = zlib.crc32(np.asarray(ids, dtype=np.int64).tobytes())
    return np.random.default_rng(seed).normal(0.0, 3.0, size=width).astype(np.float32)


@dataclass
class FakeSession:
    model: FakeModel
    histories: list[list[int]]
    logits: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.logits = self._compute()

    def _compute(self) -> np.ndarray:
        return np.stack([fake_logits(h, self.model.logit_width) for h in self.histories])

    def step(self, feeds: list[list[int]]) -> np.ndarray:
        assert len(feeds) == len(self.histories)
        assert any(f for f in feeds), "step called with nothing to feed"
        assert all(isinstance(f, list) for f in feeds), "finished rows feed []"
        self.model.calls.append([len(f) for f in feeds])
        for h, f in zip(self.histories, feeds):
            if f:
                h.extend(f)
        self.logits = self._compute()
        return self.logits


class FakeModel:
    """LM-protocol model with a logit width larger than its vocabulary (padding ids)."""

    def __init__(self, chat: bool = True) -> None:
        self.tokenizer = FakeTokenizer(chat)
        self.logit_width = len(self.tokenizer.token_bytes) + 7
        self.calls: list[list[int]] = []
        self.starts: list[list[list[int]]] = []

    def start(self, prompts: list[list[int]], max_new_tokens: int = 256) -> FakeSession:
        self.starts.append([list(p) for p in prompts])
        return FakeSession(self, [list(p) for p in prompts])


class SetMatcher:
    """Reference matcher for a finite language: everything by brute force over the strings."""

    def __init__(self, strings: Sequence[str], tokenizer: FakeTokenizer, width: int) -> None:
        self.lang = [s.encode() for s in strings]
        self.tok = tokenizer
        self.width = width
        self.prefix = b""
        self.terminated = False
        self.history: list[bytes] = []

    def _live(self, prefix: bytes) -> bool:
        return any(s.startswith(prefix) for s in self.lang)

    def allowed(self, tid: int) -> bool:
        if self.terminated:
            return False
        if tid in self.tok.eos_token_ids:
            return self.prefix in self.lang
        if tid in self.tok.special_ids or tid >= len(self.tok.token_bytes):
            return False
        return self._live(self.prefix + self.tok.token_bytes[tid])

    def fill_bitmask(self, bits: np.ndarray, index: int = 0) -> None:
        row = np.zeros(bits.shape[1], dtype=np.uint32)
        for t in range(self.width):
            if self.allowed(t):
                row[t >> 5] |= np.uint32(1 << (t & 31))
        bits[index] = row.view(np.int32)

    def advance(self, tid: int) -> None:
        if not self.allowed(tid):
            raise ValueError(f"token {tid} rejected")
        self.history.append(self.prefix)
        if tid in self.tok.eos_token_ids:
            self.terminated = True
        else:
            self.prefix += self.tok.token_bytes[tid]

    def validate_tokens(self, ids: Sequence[int]) -> int:
        saved = (self.prefix, self.terminated, list(self.history))
        n = 0
        try:
            for t in ids:
                if not self.allowed(t):
                    break
                self.advance(t)
                n += 1
        finally:
            self.prefix, self.terminated, self.history = saved
        return n

    def is_accepting(self) -> bool:
        return self.prefix in self.lang

    def is_terminated(self) -> bool:
        return self.terminated

    def forced_bytes(self) -> bytes:
        rest = [s[len(self.prefix):] for s in self.lang if s.startswith(self.prefix)]
        if not rest or (b"" in rest):
            return b""
        out = bytearray()
        for chars in zip(*rest):
            if len(set(chars)) != 1:
                break
            out.append(chars[0])
        return bytes(out)


class SetConstraint:
    """Constraint wrapper giving a fresh SetMatcher per sequence."""

    def __init__(self, strings: Sequence[str], model: FakeModel) -> None:
        self.strings = list(strings)
        self.model = model

    def matcher(self) -> SetMatcher:
        return SetMatcher(self.strings, self.model.tokenizer, self.model.logit_width)


_DEFAULT_MODEL: list[object] = []


def default_model() -> object:
    """The real default model (SmolLM2-135M-Instruct), loaded once per test session."""
    if not _DEFAULT_MODEL:
        import engine

        _DEFAULT_MODEL.append(engine.load_model())
    return _DEFAULT_MODEL[0]
