"""Constraints inside Hugging Face transformers' ``model.generate``.

``ConstrainedLogitsProcessor`` follows transformers' logits-processor contract:
``processor(input_ids: LongTensor[batch, seq], scores: FloatTensor[batch, V]) -> scores``,
called once per generated position with the whole sequence so far. It is batch-aware
(one matcher per row; beam reordering and assisted generation are followed through the
ids histories), handles a logit width ``V`` that differs from the tokenizer's size
(padding columns are masked) and applies the bitmask on the scores' device.
transformers and torch are imported lazily; nothing here needs them at import time.

    vocab = vocabulary_from_transformers(tokenizer, model)
    constraint = constrained.compile_regex(r"\\d{3}-\\d{4}", vocab)
    out = model.generate(**inputs, logits_processor=[ConstrainedLogitsProcessor(constraint)])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BitmaskShapeError, VocabularyError
from ..masks.bitmask import (
    allocate_token_bitmask,
    apply_token_bitmask,
    bitmask_words,
    bool_to_bitmask,
)
from .tracking import HistoryTracker

if TYPE_CHECKING:
    from ..matcher import Constraint
    from ..vocab import Vocabulary


def vocabulary_from_transformers(tokenizer: Any, model: Any | None = None) -> Vocabulary:
    """A :class:`~constrained.Vocabulary` for a transformers (fast) tokenizer.

    The logit width is taken from ``model`` (its output embedding rows, else
    ``config.vocab_size``) when given, since it often exceeds the tokenizer's size.
    """
    from ..vocab import Vocabulary

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise VocabularyError(
            "a fast (tokenizers-backed) transformers tokenizer is needed; got "
            f"{type(tokenizer).__name__}"
        )
    eos = tokenizer.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    if model is not None:
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        extra = [gen_eos] if isinstance(gen_eos, int) else list(gen_eos or [])
        eos_ids += [e for e in extra if e not in eos_ids]
    width = _model_logit_width(model) if model is not None else None
    n = backend.get_vocab_size(with_added_tokens=True)
    return Vocabulary.from_hf_tokenizer(
        backend, eos_token_ids=eos_ids or None, logit_width=max(width, n) if width else None
    )


def _model_logit_width(model: Any) -> int | None:
    """Rows of the model's LM head (the width of the scores generate() produces)."""
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    weight = getattr(head, "weight", None)
    if weight is not None:
        return int(weight.shape[0])
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(size) if size else None


class ConstrainedLogitsProcessor:
    """transformers ``LogitsProcessor``: masks every row's scores with its matcher.

    One instance serves ONE ``generate`` call (its first call fixes the prompt
    length); call :meth:`reset` or make a new one for the next call. Rows whose
    output is finished (EOS accepted) get every token but EOS masked, so sampling
    stays well defined while the framework pads them.
    """

    def __init__(self, constraint: Constraint, vocab: Vocabulary | None = None) -> None:
        self.constraint = constraint
        self.vocab: Vocabulary = vocab if vocab is not None else constraint.vocab
        self._tracker = HistoryTracker(constraint, self.vocab.eos_token_ids)
        self._prompt_len: int | None = None
        eos_only = np.zeros(self.vocab.logit_width, dtype=bool)
        eos_only[list(self.vocab.eos_token_ids)] = True
        self._eos_only_row = bool_to_bitmask(eos_only)

    def reset(self) -> None:
        """Forget the previous generation."""
        self._tracker.reset()
        self._prompt_len = None

    @property
    def matchers(self) -> list[Any]:
        """Current matcher per row (e.g. to check ``is_accepting()`` after generate)."""
        return self._tracker.rows

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        """Mask ``scores`` (``[batch, V]``) in place for the histories in ``input_ids``."""
        if scores.dim() != 2 or input_ids.dim() != 2 or input_ids.shape[0] != scores.shape[0]:
            raise BitmaskShapeError(
                f"expected input_ids [batch, seq] and scores [batch, V] with equal batch, got "
                f"{tuple(input_ids.shape)} and {tuple(scores.shape)}"
            )
        if self._prompt_len is None:
            self._prompt_len = int(input_ids.shape[1])
        if input_ids.shape[1] < self._prompt_len:
            raise BitmaskShapeError(
                f"input_ids has {input_ids.shape[1]} positions, fewer than the prompt's "
                f"{self._prompt_len}: call reset() before reusing the processor"
            )
        generated = input_ids[:, self._prompt_len:].tolist()
        matchers = self._tracker.sync(generated)
        return self.mask_scores(scores, matchers)

    def mask_scores(self, scores: Any, matchers: Sequence[Any]) -> Any:
        """Fill one bitmask row per matcher and apply it to ``scores`` on its device."""
        width = self.vocab.logit_width
        bits = allocate_token_bitmask(len(matchers), width)
        for row, matcher in enumerate(matchers):
            if matcher.is_terminated():
                bits[row] = self._eos_only_row
            else:
                matcher.fill_bitmask(bits, row)
        have = int(scores.shape[1])
        if have == width:
            return apply_token_bitmask(scores, bits)
        covered = min(have, width)
        apply_token_bitmask(scores[:, :covered], np.ascontiguousarray(bits[:, : bitmask_words(covered)]))
        if have > width:
            scores[:, width:] = float("-inf")
        return scores
