"""Result and statistics types returned by generate(..., return_stats=True)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GenerationStats:
    """Per-sequence counters; ``passes_saved`` counts forward passes jump-forward avoided.

    A forward pass is one model call (``start`` or ``step``) this sequence took part in. Without
    jump-forward every generated token costs one pass, so ``passes_saved`` = tokens fed through
    jump-forward chunks (prompt extension included) beyond one per pass.
    """

    prompt_tokens: int = 0
    generated_tokens: int = 0
    forced_tokens: int = 0
    forward_passes: int = 0
    passes_saved: int = 0
    finish_reason: str = ""          # "eos" | "accepted" | "stop" | "length"
    seconds: float = 0.0             # wall time of the whole batch
    model_seconds: float = 0.0       # time inside the model (start/step) for the batch
    constraint_seconds: float = 0.0  # time in masks, sampling and matcher updates for the batch


@dataclass
class GenerationResult:
    """One finished sequence: the parsed ``value``, its ``text``, token ids and statistics."""

    value: Any
    text: str
    token_ids: list[int] = field(default_factory=list)
    stats: GenerationStats = field(default_factory=GenerationStats)
