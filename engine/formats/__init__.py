"""Model file formats: GGUF files and HF folders (config.json + safetensors).

Both expose a `Checkpoint`: a `ModelConfig`, the tokenizer source, and float32 tensors by
GGUF tensor name in HF layout (see `engine.formats.base`).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelFormatError
from .base import Checkpoint


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Open a GGUF file or an HF model folder (dispatch on what `path` is)."""
    p = Path(path)
    if p.is_dir():
        from .hf import open_hf_folder

        return open_hf_folder(p)
    if p.is_file():
        from .gguf_file import open_gguf

        return open_gguf(p)
    raise ModelFormatError(f"{p}: no such model file or folder")


__all__ = ["Checkpoint", "open_checkpoint"]
