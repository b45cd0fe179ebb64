"""The token bitmask layout shared with serving engines, and helpers to apply it.

Layout: ``int32[batch, ceil(W/32)]``; bit ``i`` of word ``j`` set means token ``32*j+i`` is
allowed (the layout xgrammar, llguidance and outlines-core use, so masks interoperate).
Applying a mask writes ``-inf`` into the logits of disallowed tokens, in place; numpy
arrays always work, torch tensors when torch is installed (imported lazily).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BitmaskShapeError

__all__ = [
    "bitmask_words", "allocate_token_bitmask", "check_bitmask", "bool_to_bitmask",
    "bitmask_to_bool", "apply_token_bitmask", "words_allow",
]


def bitmask_words(width: int) -> int:
    """Number of int32 words that hold ``width`` token bits."""
    if width < 0:
        raise BitmaskShapeError(f"negative vocabulary width {width}")
    return (int(width) + 31) // 32


def allocate_token_bitmask(batch: int, width: int) -> np.ndarray:
    """A fresh ``int32[batch, ceil(width/32)]`` bitmask with every token allowed."""
    if batch < 1:
        raise BitmaskShapeError(f"batch must be >= 1, got {batch}")
    return np.full((int(batch), bitmask_words(width)), -1, dtype=np.int32)


def check_bitmask(bitmask: Any, width: int) -> None:
    """Raise ``BitmaskShapeError`` unless ``bitmask`` is an int32 array of ``ceil(width/32)`` columns."""
    if not isinstance(bitmask, np.ndarray):
        raise BitmaskShapeError(f"bitmask must be a numpy int32 array, got {type(bitmask).__name__}")
    if bitmask.dtype != np.int32:
        raise BitmaskShapeError(f"bitmask dtype must be int32, got {bitmask.dtype}")
    words = bitmask_words(width)
    if bitmask.ndim not in (1, 2) or bitmask.shape[-1] != words:
        raise BitmaskShapeError(
            f"bitmask shape {bitmask.shape} does not fit a vocabulary of width {width}: "
            f"expected ({words},) or (batch, {words})")


def bool_to_bitmask(mask: np.ndarray) -> np.ndarray:
    """Pack ``bool[..., W]`` into ``int32[..., ceil(W/32)]`` (bit i of word j = token 32j+i)."""
    mask = np.asarray(mask, dtype=bool)
    width = mask.shape[-1]
    words = bitmask_words(width)
    packed = np.packbits(mask, axis=-1, bitorder="little")
    pad = words * 4 - packed.shape[-1]
    if pad:
        packed = np.concatenate([packed, np.zeros(packed.shape[:-1] + (pad,), np.uint8)], axis=-1)
    return np.ascontiguousarray(packed).view("<i4").astype(np.int32, copy=False)


def bitmask_to_bool(bitmask: np.ndarray, width: int) -> np.ndarray:
    """Unpack ``int32[..., ceil(W/32)]`` into ``bool[..., W]``."""
    bm = np.ascontiguousarray(bitmask, dtype="<i4")
    if bm.shape[-1] * 32 < width:
        raise BitmaskShapeError(f"bitmask of {bm.shape[-1]} words cannot hold {width} tokens")
    bits = np.unpackbits(bm.view(np.uint8), axis=-1, bitorder="little")
    return bits[..., :width].astype(bool)


def words_allow(words: np.ndarray, token_id: int) -> bool:
    """Whether bit ``token_id`` is set in a 1-D bitmask row."""
    return bool((int(words[token_id >> 5]) >> (token_id & 31)) & 1)


def apply_token_bitmask(logits: Any, bitmask: Any) -> Any:
    """Set disallowed logits to ``-inf`` in place and return ``logits``.

    ``logits``: float ``[W]`` or ``[batch, W]`` (numpy array or torch tensor);
    ``bitmask``: int32 ``[ceil(W/32)]`` or ``[batch, ceil(W/32)]`` of the same kind.
    ``W`` may be smaller than ``32 * words`` (trailing bits are ignored).
    """
    if type(logits).__module__.startswith("torch"):
        return _apply_torch(logits, bitmask)
    if not isinstance(logits, np.ndarray):
        raise BitmaskShapeError(f"logits must be a numpy array or torch tensor, got {type(logits).__name__}")
    if not np.issubdtype(logits.dtype, np.floating):
        raise BitmaskShapeError(f"logits must be floating point, got {logits.dtype}")
    width = logits.shape[-1]
    check_bitmask(bitmask, width)
    if logits.ndim != bitmask.ndim or (logits.ndim == 2 and logits.shape[0] != bitmask.shape[0]):
        raise BitmaskShapeError(f"logits shape {logits.shape} and bitmask shape {bitmask.shape} disagree")
    allowed = bitmask_to_bool(bitmask, width)
    logits[~allowed] = -np.inf
    return logits


def _apply_torch(logits: Any, bitmask: Any) -> Any:
    """Torch version of :func:`apply_token_bitmask` (runs on the logits' device)."""
    import torch

    if not isinstance(bitmask, torch.Tensor):
        bitmask = torch.from_numpy(np.asarray(bitmask))
    if bitmask.dtype != torch.int32:
        raise BitmaskShapeError(f"bitmask dtype must be int32, got {bitmask.dtype}")
    width = logits.shape[-1]
    words = bitmask_words(width)
    if bitmask.dim() not in (1, 2) or bitmask.shape[-1] != words or logits.dim() != bitmask.dim() \
            or (logits.dim() == 2 and logits.shape[0] != bitmask.shape[0]):
        raise BitmaskShapeError(
            f"logits shape {tuple(logits.shape)} and bitmask shape {tuple(bitmask.shape)} disagree "
            f"(expected [..., {words}] words)")
    bm = bitmask.to(logits.device)
    shifts = torch.arange(32, device=logits.device, dtype=torch.int32)
    bits = (bm.unsqueeze(-1) >> shifts) & 1
    allowed = bits.reshape(*bm.shape[:-1], words * 32)[..., :width].bool()
    logits.masked_fill_(~allowed, float("-inf"))
    return logits
