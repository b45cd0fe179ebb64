"""The LM protocol as generate() uses it, plus per-model data cached across calls.

``ModelInfo`` holds what depends only on the model (token bytes, EOS ids, logit width, the
constraint Vocabulary, compiled constraints by output-type key, the free-text mask); it is cached
per model object in a WeakKeyDictionary. ``LMAdapter`` is one run's view of the model: it opens
a batched decoding session and applies int32 bitmasks to logits.
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import PromptError

_INFO_CACHE: weakref.WeakKeyDictionary[Any, ModelInfo] = weakref.WeakKeyDictionary()
_INFO_LOCK = threading.Lock()


def _words(width: int) -> int:
    return (width + 31) // 32


def _bits_from_ids(ids: Sequence[int], width: int) -> np.ndarray:
    """An int32 bitmask row with exactly ``ids`` set."""
    row = np.zeros(_words(width), dtype=np.uint32)
    for i in ids:
        if 0 <= i < width:
            row[i >> 5] |= np.uint32(1) << np.uint32(i & 31)
    return row.view(np.int32)


class ModelInfo:
    """Model-derived data shared by every generation on that model."""

    def __init__(self, model: Any) -> None:
        self.model = weakref.proxy(model) if _weakrefable(model) else model
        tok = model.tokenizer
        self.tokenizer = tok
        self.token_bytes: list[bytes] = list(tok.token_bytes)
        self.width = int(model.logit_width)
        self.eos_ids = frozenset(int(i) for i in tok.eos_token_ids)
        special = frozenset(int(i) for i in getattr(tok, "special_ids", ()))
        free = [i for i in range(len(self.token_bytes)) if i not in special or i in self.eos_ids]
        self.free_bitmask = _bits_from_ids(free, self.width)
        self.eos_bitmask = _bits_from_ids(sorted(self.eos_ids), self.width)
        self._vocab: Any = None
        self._constraints: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def vocabulary(self, model: Any) -> Any:
        """The constraint Vocabulary of this model (built once)."""
        with self._lock:
            if self._vocab is None:
                from ..vocab import Vocabulary

                self._vocab = Vocabulary.from_model(model)
            return self._vocab

    def constraint(self, model: Any, spec: Any) -> Any:
        """The compiled constraint for an OutputSpec (compiled once per model and key)."""
        if not spec.constrained:
            return None
        with self._lock:
            cached = self._constraints.get(spec.key)
        if cached is not None:
            return cached
        compiled = spec.compile(lambda: self.vocabulary(model))
        with self._lock:
            self._constraints.setdefault(spec.key, compiled)
            return self._constraints[spec.key]


def _weakrefable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


def model_info(model: Any) -> ModelInfo:
    """The cached :class:`ModelInfo` for ``model`` (built on first use)."""
    if not _weakrefable(model):
        return ModelInfo(model)
    with _INFO_LOCK:
        info = _INFO_CACHE.get(model)
        if info is None:
            info = ModelInfo(model)
            _INFO_CACHE[model] = info
        return info


class LMAdapter:
    """One run's handle on the model: batched start/step and bitmask application."""

    def __init__(self, model: Any, info: ModelInfo) -> None:
        self.model = model
        self.info = info
        self.tokenizer = info.tokenizer
        self.token_bytes = info.token_bytes
        self.eos_ids = info.eos_ids
        self.width = info.width
        self.free_bitmask = info.free_bitmask
        self.eos_bitmask = info.eos_bitmask
        self._session: Any = None

    def allocate_bitmask(self, batch: int) -> np.ndarray:
        """A zeroed int32[batch, ceil(W/32)] bitmask."""
        return np.zeros((batch, _words(self.width)), dtype=np.int32)

    def apply_bitmask(self, logits: np.ndarray, bits: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Copy of ``logits`` (float32[B, W]) with disallowed tokens set to -inf on ``rows``."""
        from ..masks.bitmask import apply_token_bitmask

        out = np.array(logits, dtype=np.float32, copy=True)
        if out.ndim != 2 or out.shape[1] != self.width:
            raise PromptError(f"model returned logits of shape {out.shape}, expected (batch, {self.width})")
        idx = np.asarray(rows, dtype=np.intp)
        out[idx] = apply_token_bitmask(out[idx], np.ascontiguousarray(bits[idx]))
        return out

    def start(self, prompts: list[list[int]], max_new_tokens: int | None = None) -> np.ndarray:
        """Prefill the batch; float32[B, W] logits of each prompt's last position.

        ``max_new_tokens`` lets the model preallocate its KV cache (protocol: ``model.start``).
        """
        for p in prompts:
            if not p:
                raise PromptError("a prompt tokenised to zero tokens; give a non-empty prompt")
        if max_new_tokens is None:
            self._session = self.model.start(prompts)
        else:
            self._session = self.model.start(prompts, max_new_tokens=max_new_tokens)
        return np.asarray(self._session.logits)

    def step(self, feeds: list[list[int] | None]) -> np.ndarray:
        """Feed each live row one token or a chunk (None = finished row: feeds nothing); next logits."""
        return np.asarray(self._session.step([list(f) if f else [] for f in feeds]))

    def close(self) -> None:
        """Release the decoding session (KV cache)."""
        close = getattr(self._session, "close", None)
        if callable(close):
            close()
        self._session = None
