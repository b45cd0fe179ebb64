"""`engine`: our own inference core (GGUF / HF models, tokenizers, Llama-family forward pass).

Never imports `constrained`. Main entry points: `load_model()`, `Model`, `Session`,
`Tokenizer`, `SamplingParams`, `sample`, and `registry` (named models).
"""
from __future__ import annotations

from .config import ModelConfig
from .errors import EngineError
from .model import Model, Session, load_model
from .sampling import SamplingParams, sample
from .tokenizer import Tokenizer

__all__ = ["EngineError", "Model", "ModelConfig", "SamplingParams", "Session", "Tokenizer", "load_model", "sample"]
