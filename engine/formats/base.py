"""The format-independent view of a model checkpoint that the transformer is built from."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import ModelConfig

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer


class Checkpoint(ABC):
    """A model file: its config, tokenizer and tensors (float32, HF layout, GGUF names).

    Tensor names are GGUF's (`token_embd.weight`, `blk.3.attn_q.weight`, ...) whatever the
    file format; matrices are `[out_features, in_features]`; RoPE Q/K rows rotate halves.
    """

    path: Path
    config: ModelConfig

    @abstractmethod
    def tensor_names(self) -> frozenset[str]:
        """Names of the tensors present (GGUF naming)."""

    @abstractmethod
    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name` as a float32 array (raises ModelFormatError when absent)."""

    def has(self, name: str) -> bool:
        """Whether tensor `name` is present."""
        return name in self.tensor_names()

    @abstractmethod
    def tokenizer(self) -> Tokenizer:
        """The tokenizer stored with the checkpoint."""

    @abstractmethod
    def logit_width(self) -> int:
        """Rows of the output projection (the width of the logits)."""
