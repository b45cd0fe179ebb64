"""GGUF model files via the `gguf` package: metadata, config, dequantised tensors."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ModelConfig
from ..errors import ModelFormatError, UnsupportedArchitecture, UnsupportedQuantType
from .base import Checkpoint
from .gguf_reader import GGUFFile, TensorInfo, dequantize

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

DEQUANT_CHUNK_ROWS = 4096  # rows dequantised at a time
# llama.cpp hard-codes these for gemma3 (not stored in the file)
GEMMA3_SWA_PATTERN = 6
GEMMA3_ROPE_LOCAL_BASE = 10000.0


def read_gguf(path: Path) -> GGUFFile:
    """Parse a GGUF file (metadata + tensor index); damage raises ModelFormatError."""
    try:
        return GGUFFile(path)
    except (ModelFormatError, UnsupportedQuantType):
        raise
    except Exception as exc:  # struct/unicode/value errors from a damaged header
        raise ModelFormatError(f"{path}: corrupt or truncated GGUF file ({type(exc).__name__}: {exc})") from exc


def field_value(reader: GGUFFile, key: str, default: Any = None) -> Any:
    """Metadata value of `key` (strings as str, string arrays as list[str], numbers as Python)."""
    v = reader.get(key, default)
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [b.decode("utf-8", errors="surrogateescape") for b in v]
    return v


def string_array(reader: GGUFFile, key: str) -> list[bytes] | None:
    """A string-array field as raw bytes per entry (tokens may hold invalid UTF-8)."""
    v = reader.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or (v and not isinstance(v[0], bytes)):
        raise ModelFormatError(f"{reader.path}: metadata {key!r} is not a string array")
    return v


def numeric_array(reader: GGUFFile, key: str) -> np.ndarray | None:
    """A numeric-array field as a numpy array."""
    v = reader.get(key)
    if v is None:
        return None
    if not isinstance(v, np.ndarray):
        raise ModelFormatError(f"{reader.path}: metadata {key!r} is not a numeric array")
    return v


def unpermute_rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation (interleaved pairs -> HF halves layout)."""
    rows = w.shape[0]
    return np.ascontiguousarray(
        w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def dequantize_tensor(t: TensorInfo, path: Path) -> np.ndarray:
    """A GGUF tensor as float32 in numpy order ([rows, cols]), whatever its quant type."""
    return dequantize(t, path, DEQUANT_CHUNK_ROWS)


class GGUFCheckpoint(Checkpoint):
    """A GGUF model file (memory-mapped; tensors are dequantised on request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader = read_gguf(path)
        self._tensors = self.reader.tensors
        self.arch = str(field_value(self.reader, "general.architecture", ""))
        if not self.arch:
            raise ModelFormatError(f"{path}: GGUF metadata lacks general.architecture")
        self.config = self._config()

    def _key(self, name: str, default: Any = None, required: bool = False) -> Any:
        value = field_value(self.reader, f"{self.arch}.{name}", default)
        if value is None and required:
            raise ModelFormatError(f"{self.path}: GGUF metadata lacks {self.arch}.{name}")
        return value

    def _config(self) -> ModelConfig:
        arch = self.arch
        if arch not in ("llama", "qwen2", "gemma3"):
            raise UnsupportedArchitecture(
                f"{self.path}: architecture {arch!r} is not supported (supported: llama, qwen2, gemma3)"
            )
        if "token_embd.weight" not in self._tensors:
            raise ModelFormatError(f"{self.path}: no token_embd.weight tensor")
        d_model = int(self._key("embedding_length", required=True))
        n_heads = int(self._key("attention.head_count", required=True))
        n_kv = self._key("attention.head_count_kv", n_heads)
        if isinstance(n_kv, list):
            raise UnsupportedArchitecture(f"{self.path}: per-layer head_count_kv is not supported")
        head_dim = int(self._key("attention.key_length", d_model // n_heads))
        rope_dims = int(self._key("rope.dimension_count", head_dim))
        if rope_dims != head_dim:
            raise UnsupportedArchitecture(
                f"{self.path}: partial rotary embeddings (rope.dimension_count={rope_dims} < head_dim={head_dim})"
            )
        scaling = self._key("rope.scaling.type", "none")
        factor = float(self._key("rope.scaling.factor", 1.0) or 1.0)
        if scaling not in ("none", "linear") and factor != 1.0:
            raise UnsupportedArchitecture(f"{self.path}: RoPE scaling {scaling!r} is not supported")
        vocab_rows = int(self._tensors["token_embd.weight"].shape[-1])
        common: dict[str, Any] = {
            "arch": arch,
            "n_layers": int(self._key("block_count", required=True)),
            "d_model": d_model,
            "n_heads": n_heads,
            "n_kv_heads": int(n_kv),
            "head_dim": head_dim,
            "d_ff": int(self._key("feed_forward_length", required=True)),
            "vocab_size": vocab_rows,
            "context_length": int(self._key("context_length", 2048)),
            "rope_theta": float(self._key("rope.freq_base", 10000.0)),
            "norm_eps": float(self._key("attention.layer_norm_rms_epsilon", 1e-6)),
            "tie_embeddings": "output.weight" not in self._tensors,
            "rope_scaling_factor": factor if scaling == "linear" else 1.0,
        }
        if arch == "gemma3":
            pattern = self._key("attention.sliding_window_pattern", GEMMA3_SWA_PATTERN)
            common.update(
                sliding_window=int(self._key("attention.sliding_window", 0)) or None,
                sliding_window_pattern=pattern if isinstance(pattern, int) else 0,
                sliding_layers=tuple(bool(x) for x in pattern) if isinstance(pattern, list) else None,
                rope_theta_local=float(self._key("rope.freq_base_swa", GEMMA3_ROPE_LOCAL_BASE)),
                embed_scale=float(np.sqrt(np.float32(d_model))),
                activation="gelu_tanh",
            )
        return ModelConfig(**common)

    def tensor_names(self) -> frozenset[str]:
        return frozenset(self._tensors)

    def tensor(self, name: str) -> np.ndarray:
        t = self._tensors.get(name)
        if t is None:
            raise ModelFormatError(f"{self.path}: tensor {name!r} is missing")
        arr = dequantize_tensor(t, self.path)
        if self.arch == "llama" and (name.endswith(("attn_q.weight", "attn_k.weight"))):
            heads = self.config.n_heads if name.endswith("attn_q.weight") else self.config.n_kv_heads
            arr = unpermute_rope_rows(arr, heads)
        return arr

    def logit_width(self) -> int:
        name = "token_embd.weight" if self.config.tie_embeddings else "output.weight"
        return int(self._tensors[name].shape[-1])

    @property
    def metadata(self) -> dict[str, Any]:
        """Scalar/string metadata (arrays omitted) — for inspection and error messages."""
        return {k: v for k, v in self.reader.fields.items() if not isinstance(v, (list, np.ndarray))}

    def tokenizer(self) -> Tokenizer:
        from ..tokenizer import Tokenizer

        return Tokenizer.from_gguf_reader(self.reader, source=str(self.path))


def open_gguf(path: Path) -> GGUFCheckpoint:
    """Open a GGUF model file."""
    return GGUFCheckpoint(Path(path))
