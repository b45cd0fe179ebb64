"""HF model folders: `config.json` + `*.safetensors` (sharded or not), F32/F16/BF16.

safetensors files are parsed directly (8-byte header length, JSON header, raw data) and
memory-mapped, because numpy has no bfloat16: BF16 is widened by hand (bits << 16).
Tensor names are mapped to GGUF names so the transformer sees one naming scheme.
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ModelConfig
from ..errors import ModelFormatError, UnsupportedArchitecture, UnsupportedQuantType
from .base import Checkpoint

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer

MODEL_TYPES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "gemma3_text": "gemma3", "gemma3": "gemma3"}
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}

_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
}
_LAYER_RE = re.compile(r"^(?:language_model\.)?model\.layers\.(\d+)\.(.+)$")


def gguf_name(hf: str, arch: str) -> str | None:
    """GGUF name of HF tensor `hf` (None for tensors the transformer does not use)."""
    base = hf.removeprefix("language_model.")
    if base == "model.embed_tokens.weight":
        return "token_embd.weight"
    if base == "model.norm.weight":
        return "output_norm.weight"
    if base == "lm_head.weight":
        return "output.weight"
    m = _LAYER_RE.match(hf)
    if not m:
        return None
    layer, rest = m.groups()
    if rest == "post_attention_layernorm.weight":
        return f"blk.{layer}." + ("post_attention_norm.weight" if arch == "gemma3" else "ffn_norm.weight")
    mapped = _LAYER_NAMES.get(rest)
    return f"blk.{layer}.{mapped}" if mapped else None


class SafetensorsFile:
    """One memory-mapped .safetensors file: name -> (dtype, shape, byte range)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        try:
            with open(path, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                if n <= 0 or 8 + n > size:
                    raise ValueError(f"header length {n} does not fit a {size}-byte file")
                header = json.loads(fh.read(n))
        except (OSError, ValueError, struct.error) as exc:
            raise ModelFormatError(f"{path}: not a safetensors file ({exc})") from exc
        header.pop("__metadata__", None)
        self.entries: dict[str, dict[str, Any]] = header
        self.data_start = 8 + n
        for name, e in header.items():
            _begin, end = e["data_offsets"]
            if self.data_start + end > size:
                raise ModelFormatError(f"{path}: truncated: tensor {name!r} ends past the end of the file")
        self._map = np.memmap(path, dtype=np.uint8, mode="r") if size > 0 else None

    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name` as float32."""
        e = self.entries[name]
        dt = _DTYPES.get(e["dtype"])
        if dt is None:
            raise UnsupportedQuantType(f"{self.path}: tensor {name!r} has dtype {e['dtype']} (supported: F32, F16, BF16)")
        begin, end = e["data_offsets"]
        assert self._map is not None
        raw = np.asarray(self._map[self.data_start + begin : self.data_start + end]).view(dt)
        shape = tuple(e["shape"])
        if raw.size != int(np.prod(shape)):
            raise ModelFormatError(f"{self.path}: tensor {name!r} holds {raw.size} values, shape says {shape}")
        if e["dtype"] == "BF16":
            out = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            out = raw.astype(np.float32)
        return out.reshape(shape)


class HFCheckpoint(Checkpoint):
    """An HF model folder (config.json, safetensors shards, tokenizer files)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder
        cfg_path = folder / "config.json"
        try:
            raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"{folder}: missing or unreadable config.json ({exc})") from exc
        if "text_config" in raw and isinstance(raw["text_config"], dict):
            raw = {**raw["text_config"], "model_type": raw["text_config"].get("model_type", raw.get("model_type"))}
        self.raw_config = raw
        model_type = str(raw.get("model_type", ""))
        arch = MODEL_TYPES.get(model_type)
        if arch is None:
            raise UnsupportedArchitecture(
                f"{folder}: model_type {model_type!r} is not supported (supported: {', '.join(sorted(MODEL_TYPES))})"
            )
        self.arch = arch
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            raise ModelFormatError(f"{folder}: no *.safetensors files")
        self._where: dict[str, tuple[SafetensorsFile, str]] = {}
        for f in files:
            st = SafetensorsFile(f)
            for name in st.entries:
                g = gguf_name(name, arch)
                if g is not None:
                    self._where[g] = (st, name)
        self.config = self._config(raw)

    def _config(self, raw: dict[str, Any]) -> ModelConfig:
        def req(key: str) -> Any:
            if key not in raw:
                raise ModelFormatError(f"{self.path}: config.json lacks {key!r}")
            return raw[key]

        d = int(req("hidden_size"))
        heads = int(req("num_attention_heads"))
        n_layers = int(req("num_hidden_layers"))
        scaling = raw.get("rope_scaling") or {}
        kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
        if kind not in ("default", "linear"):
            raise UnsupportedArchitecture(f"{self.path}: RoPE scaling {kind!r} is not supported")
        act = raw.get("hidden_activation") or raw.get("hidden_act") or "silu"
        if act not in ("silu", "gelu_pytorch_tanh"):
            raise UnsupportedArchitecture(f"{self.path}: activation {act!r} is not supported")
        out: dict[str, Any] = {
            "arch": self.arch,
            "n_layers": n_layers,
            "d_model": d,
            "n_heads": heads,
            "n_kv_heads": int(raw.get("num_key_value_heads") or heads),
            "head_dim": int(raw.get("head_dim") or d // heads),
            "d_ff": int(req("intermediate_size")),
            "vocab_size": int(req("vocab_size")),
            "context_length": int(raw.get("max_position_embeddings", 2048)),
            "rope_theta": float(raw.get("rope_theta", 10000.0)),
            "norm_eps": float(raw.get("rms_norm_eps", 1e-6)),
            "tie_embeddings": "output.weight" not in self._where,
            "rope_scaling_factor": float(scaling.get("factor", 1.0)) if kind == "linear" else 1.0,
            "activation": "gelu_tanh" if act == "gelu_pytorch_tanh" else "silu",
        }
        window = raw.get("sliding_window")
        if self.arch == "gemma3":
            layer_types = raw.get("layer_types")
            pattern = int(raw.get("sliding_window_pattern", 6))
            sliding = (
                tuple(t == "sliding_attention" for t in layer_types)
                if isinstance(layer_types, list)
                else tuple((i + 1) % pattern != 0 for i in range(n_layers))
            )
            out.update(
                sliding_window=int(window) if window else None,
                sliding_layers=sliding,
                rope_theta_local=float(raw.get("rope_local_base_freq", 10000.0)),
                embed_scale=float(np.sqrt(np.float32(d))),
                attn_scale=float(raw.get("query_pre_attn_scalar", out["head_dim"])) ** -0.5,
            )
        elif window and raw.get("use_sliding_window", True):
            out.update(sliding_window=int(window), sliding_layers=(True,) * n_layers)
        return ModelConfig(**out)

    def tensor_names(self) -> frozenset[str]:
        return frozenset(self._where)

    def tensor(self, name: str) -> np.ndarray:
        loc = self._where.get(name)
        if loc is None:
            raise ModelFormatError(f"{self.path}: tensor {name!r} is missing")
        st, hf = loc
        arr = st.tensor(hf)
        if self.arch == "gemma3" and name.endswith("norm.weight"):
            arr = arr + np.float32(1.0)  # HF Gemma norms scale by (1 + w); GGUF stores 1 + w
        return arr

    def logit_width(self) -> int:
        st, hf = self._where["output.weight" if "output.weight" in self._where else "token_embd.weight"]
        return int(st.entries[hf]["shape"][0])

    def tokenizer(self) -> Tokenizer:
        from ..tokenizer import Tokenizer

        return Tokenizer.from_hf(self.path)


def open_hf_folder(folder: Path) -> HFCheckpoint:
    """Open an HF model folder."""
    return HFCheckpoint(Path(folder))
