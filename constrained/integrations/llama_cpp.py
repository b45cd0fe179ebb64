"""Constraints inside llama-cpp-python.

llama-cpp-python's documented hook is a ``logits_processor``: a callable
``(input_ids: np.ndarray[np.intc], scores: np.ndarray[np.single]) -> np.ndarray[np.single]``
called before each sampled token with the whole context so far (prompt + generated ids)
and the 1-D logits of the next position. :class:`LlamaCppLogitsProcessor` implements it:

    from llama_cpp import Llama, LogitsProcessorList
    llm = Llama(model_path="model.gguf")
    vocab = vocabulary_from_llama(llm)
    proc = LlamaCppLogitsProcessor(constrained.compile_regex(r"\\d{3}-\\d{4}", vocab))
    llm("Call ", logits_processor=LogitsProcessorList([proc]), max_tokens=20)

llama_cpp is imported lazily (only :func:`vocabulary_from_llama` touches the object).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BitmaskShapeError, VocabularyError
from ..masks.bitmask import bitmask_to_bool, bitmask_words
from .tracking import HistoryTracker

if TYPE_CHECKING:
    from ..matcher import Constraint
    from ..vocab import Vocabulary


def vocabulary_from_llama(llm: Any) -> Vocabulary:
    """The :class:`~constrained.Vocabulary` of a ``llama_cpp.Llama`` (read from its GGUF).

    The logit width is ``llm.n_vocab()``, the length of the scores the processor gets.
    """
    from ..vocab import Vocabulary

    path = getattr(llm, "model_path", None)
    if not path or not os.path.isfile(path):
        raise VocabularyError("the Llama object has no readable model_path (a GGUF file) to read the vocabulary from")
    width = int(llm.n_vocab()) if callable(getattr(llm, "n_vocab", None)) else None
    return Vocabulary.from_gguf(path, logit_width=width)


class LlamaCppLogitsProcessor:
    """llama-cpp-python ``logits_processor`` masking disallowed tokens with ``-inf``.

    One instance serves ONE completion call: its first call fixes the prompt length
    (call :meth:`reset` or make a new one for the next call). The scores array is
    modified in place and returned, as llama-cpp-python expects.
    """

    def __init__(self, constraint: Constraint, vocab: Vocabulary | None = None) -> None:
        self.constraint = constraint
        self.vocab: Vocabulary = vocab if vocab is not None else constraint.vocab
        self._tracker = HistoryTracker(constraint, self.vocab.eos_token_ids)
        self._prompt_len: int | None = None
        self._bits = np.zeros((1, bitmask_words(self.vocab.logit_width)), dtype=np.int32)

    def reset(self) -> None:
        """Forget the previous completion."""
        self._tracker.reset()
        self._prompt_len = None

    @property
    def matcher(self) -> Any:
        """The matcher of the current completion (None before the first call)."""
        rows = self._tracker.rows
        return rows[0] if rows else None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Mask ``scores`` (1-D float32 logits) for the context ``input_ids``."""
        ids = np.asarray(input_ids)
        if ids.ndim != 1 or scores.ndim != 1:
            raise BitmaskShapeError(
                f"expected 1-D input_ids and scores, got shapes {ids.shape} and {scores.shape}"
            )
        if self._prompt_len is None:
            self._prompt_len = int(ids.shape[0])
        if ids.shape[0] < self._prompt_len:
            raise BitmaskShapeError(
                f"input_ids has {ids.shape[0]} tokens, fewer than the prompt's {self._prompt_len}: "
                "call reset() before reusing the processor"
            )
        (matcher,) = self._tracker.sync([ids[self._prompt_len:].tolist()])
        width = self.vocab.logit_width
        if matcher.is_terminated():
            allowed = np.zeros(width, dtype=bool)
            allowed[list(self.vocab.eos_token_ids)] = True
        else:
            matcher.fill_bitmask(self._bits, 0)
            allowed = bitmask_to_bool(self._bits[0], width)
        have = scores.shape[0]
        covered = min(have, width)
        scores[:covered][~allowed[:covered]] = -np.inf
        if have > width:
            scores[width:] = -np.inf
        return scores
