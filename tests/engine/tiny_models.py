"""Tiny random-weight models written with gguf.GGUFWriter, and an independent reference forward.

The reference is deliberately written differently from engine/model.py: float64, no KV
cache, one head at a time, RoPE as complex rotation, explicit loops over layers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gguf
import numpy as np

from engine.tokenizer import gpt2_byte_decoder

CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass
class TinySpec:
    """Hyper-parameters of a tiny test model."""

    arch: str
    n_layers: int = 3
    d_model: int = 32
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int = 8
    d_ff: int = 48
    context_length: int = 64
    rope_theta: float = 10000.0
    rope_theta_local: float = 10000.0
    norm_eps: float = 1e-6
    sliding_window: int = 0
    tie: bool = True
    qkv_bias: bool = False
    seed: int = 0
    weights: dict[str, np.ndarray] = field(default_factory=dict)


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """A byte-level BPE vocabulary: 256 byte tokens, a few merges, control tokens."""
    alphabet = sorted(gpt2_byte_decoder(), key=lambda c: gpt2_byte_decoder()[c])
    merges = ["Ġ t", "h e", "Ġt he", "a b", "ab c"]
    tokens = alphabet + ["Ġt", "he", "Ġthe", "ab", "abc"] + CONTROL_TOKENS
    types = [1] * (len(tokens) - len(CONTROL_TOKENS)) + [3] * len(CONTROL_TOKENS)
    return tokens, types, merges


def make_weights(spec: TinySpec, vocab: int) -> dict[str, np.ndarray]:
    """Random weights (HF layout, GGUF names); norms are final multipliers (GGUF convention)."""
    rng = np.random.default_rng(spec.seed)
    d, H, K, hd, ff = spec.d_model, spec.n_heads, spec.n_kv_heads, spec.head_dim, spec.d_ff

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w: dict[str, np.ndarray] = {
        "token_embd.weight": rng.standard_normal((vocab, d)).astype(np.float32),
        "output_norm.weight": norm(d),
    }
    if not spec.tie:
        w["output.weight"] = mat(vocab, d)
    for i in range(spec.n_layers):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = norm(d)
        w[p + "attn_q.weight"] = mat(H * hd, d)
        w[p + "attn_k.weight"] = mat(K * hd, d)
        w[p + "attn_v.weight"] = mat(K * hd, d)
        w[p + "attn_output.weight"] = mat(d, H * hd)
        w[p + "ffn_norm.weight"] = norm(d)
        w[p + "ffn_gate.weight"] = mat(ff, d)
        w[p + "ffn_up.weight"] = mat(ff, d)
        w[p + "ffn_down.weight"] = mat(d, ff)
        if spec.qkv_bias:
            for n, rows in (("q", H * hd), ("k", K * hd), ("v", K * hd)):
                w[p + f"attn_{n}.bias"] = (0.1 * rng.standard_normal(rows)).astype(np.float32)
        if spec.arch == "gemma3":
            w[p + "attn_q_norm.weight"] = norm(hd)
            w[p + "attn_k_norm.weight"] = norm(hd)
            w[p + "post_attention_norm.weight"] = norm(d)
            w[p + "post_ffw_norm.weight"] = norm(d)
    return w


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert-time Q/K row permutation (HF halves -> interleaved pairs)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path: Path, spec: TinySpec) -> TinySpec:
    """Write a tiny model of `spec.arch` to `path`; fills and returns `spec.weights`."""
    tokens, types, merges = tiny_vocab()
    spec.weights = make_weights(spec, len(tokens))
    w = gguf.GGUFWriter(str(path), spec.arch)
    w.add_block_count(spec.n_layers)
    w.add_context_length(spec.context_length)
    w.add_embedding_length(spec.d_model)
    w.add_feed_forward_length(spec.d_ff)
    w.add_head_count(spec.n_heads)
    w.add_head_count_kv(spec.n_kv_heads)
    w.add_key_length(spec.head_dim)
    w.add_value_length(spec.head_dim)
    w.add_rope_freq_base(spec.rope_theta)
    w.add_layer_norm_rms_eps(spec.norm_eps)
    if spec.sliding_window:
        w.add_sliding_window(spec.sliding_window)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 3)
    w.add_eos_token_id(len(tokens) - 1)
    for name, arr in spec.weights.items():
        out = arr
        if spec.arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            out = llama_permute(arr, spec.n_heads if "attn_q" in name else spec.n_kv_heads)
        w.add_tensor(name, np.ascontiguousarray(out))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return spec


# ---------------------------------------------------------------- independent reference
def _rms(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rope_complex(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """x [T, hd]: pair dimension i with i + hd/2 as a complex number and rotate it."""
    hd = x.shape[-1]
    half = hd // 2
    freqs = theta ** (-np.arange(half) * 2.0 / hd)
    z = (x[:, :half] + 1j * x[:, half:]) * np.exp(1j * positions[:, None] * freqs[None, :])
    return np.concatenate([z.real, z.imag], axis=-1)


def reference_logits(spec: TinySpec, ids: list[int]) -> np.ndarray:
    """Logits for every position of `ids` ([T, vocab]), float64, straight from the formulas."""
    w = {k: v.astype(np.float64) for k, v in spec.weights.items()}
    gemma = spec.arch == "gemma3"
    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    x = w["token_embd.weight"][ids]
    if gemma:
        x = x * np.sqrt(spec.d_model)
    group = spec.n_heads // spec.n_kv_heads
    for i in range(spec.n_layers):
        p = f"blk.{i}."
        sliding = gemma and spec.sliding_window and (i + 1) % 6 != 0
        theta = spec.rope_theta_local if sliding else spec.rope_theta
        h = _rms(x, w[p + "attn_norm.weight"], spec.norm_eps)
        q = h @ w[p + "attn_q.weight"].T + w.get(p + "attn_q.bias", 0.0)
        k = h @ w[p + "attn_k.weight"].T + w.get(p + "attn_k.bias", 0.0)
        v = h @ w[p + "attn_v.weight"].T + w.get(p + "attn_v.bias", 0.0)
        heads = []
        for hh in range(spec.n_heads):
            kv = hh // group
            sl_q = slice(hh * spec.head_dim, (hh + 1) * spec.head_dim)
            sl_k = slice(kv * spec.head_dim, (kv + 1) * spec.head_dim)
            qh, kh, vh = q[:, sl_q], k[:, sl_k], v[:, sl_k]
            if gemma:
                qh = _rms(qh, w[p + "attn_q_norm.weight"], spec.norm_eps)
                kh = _rms(kh, w[p + "attn_k_norm.weight"], spec.norm_eps)
            qh, kh = _rope_complex(qh, pos, theta), _rope_complex(kh, pos, theta)
            scores = qh @ kh.T / np.sqrt(spec.head_dim)
            for a in range(T):
                for b in range(T):
                    if b > a or (sliding and a - b >= spec.sliding_window):
                        scores[a, b] = -np.inf
            probs = np.exp(scores - scores.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            heads.append(probs @ vh)
        o = np.concatenate(heads, axis=1) @ w[p + "attn_output.weight"].T
        if gemma:
            o = _rms(o, w[p + "post_attention_norm.weight"], spec.norm_eps)
        x = x + o
        h = _rms(x, w[p + "ffn_norm.weight"], spec.norm_eps)
        g = h @ w[p + "ffn_gate.weight"].T
        u = h @ w[p + "ffn_up.weight"].T
        if gemma:
            act = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g**3)))
        else:
            act = g / (1 + np.exp(-g))
        f = (act * u) @ w[p + "ffn_down.weight"].T
        if gemma:
            f = _rms(f, w[p + "post_ffw_norm.weight"], spec.norm_eps)
        x = x + f
    out = w.get("output.weight", w["token_embd.weight"])
    return _rms(x, w["output_norm.weight"], spec.norm_eps) @ out.T


# ---------------------------------------------------------------- HF folders
_HF_LAYER = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
    "post_attention_norm.weight": "post_attention_layernorm.weight",
}


def hf_name(name: str, arch: str) -> str:
    """HF checkpoint name of GGUF tensor `name`."""
    top = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
    if name in top:
        return top[name]
    _, layer, rest = name.split(".", 2)
    if rest == "ffn_norm.weight":
        hf = "pre_feedforward_layernorm.weight" if arch == "gemma3" else "post_attention_layernorm.weight"
    else:
        hf = _HF_LAYER[rest]
    return f"model.layers.{layer}.{hf}"


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (round to nearest even)."""
    u = x.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors_by_hand(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """Minimal safetensors writer: name -> (dtype tag, raw array)."""
    import json
    import struct

    header: dict[str, object] = {}
    blobs, offset = [], 0
    for name, (tag, arr) in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header).encode("utf-8")
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def write_tiny_hf(folder: Path, spec: TinySpec, dtype: str, shards: int = 1) -> dict[str, np.ndarray]:
    """Write `spec.weights` as an HF folder in F32/F16/BF16; returns the weights as stored (rounded)."""
    import json

    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers

    folder.mkdir(parents=True, exist_ok=True)
    tokens, _types, merges = tiny_vocab()
    stored: dict[str, np.ndarray] = {}
    tensors: dict[str, tuple[str, np.ndarray]] = {}
    for name, arr in spec.weights.items():
        hf_arr = arr - np.float32(1.0) if spec.arch == "gemma3" and name.endswith("norm.weight") else arr
        if dtype == "BF16":
            bits = to_bf16_bits(hf_arr)
            tensors[hf_name(name, spec.arch)] = ("BF16", bits)
            back = (bits.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            tensors[hf_name(name, spec.arch)] = ("F16", hf_arr.astype(np.float16))
            back = hf_arr.astype(np.float16).astype(np.float32)
        else:
            tensors[hf_name(name, spec.arch)] = ("F32", hf_arr.astype(np.float32))
            back = hf_arr.astype(np.float32)
        stored[name] = back + np.float32(1.0) if spec.arch == "gemma3" and name.endswith("norm.weight") else back
    names = list(tensors)
    for s in range(shards):
        part = {n: tensors[n] for n in names[s::shards]}
        write_safetensors_by_hand(folder / f"model-{s + 1:05d}-of-{shards:05d}.safetensors", part)
    config = {
        "model_type": {"llama": "llama", "qwen2": "qwen2", "gemma3": "gemma3_text"}[spec.arch],
        "hidden_size": spec.d_model, "num_hidden_layers": spec.n_layers, "num_attention_heads": spec.n_heads,
        "num_key_value_heads": spec.n_kv_heads, "head_dim": spec.head_dim, "intermediate_size": spec.d_ff,
        "vocab_size": len(tokens), "max_position_embeddings": spec.context_length, "rope_theta": spec.rope_theta,
        "rms_norm_eps": spec.norm_eps, "tie_word_embeddings": spec.tie,
        "hidden_act": "gelu_pytorch_tanh" if spec.arch == "gemma3" else "silu",
    }
    if spec.arch == "gemma3":
        config.update(sliding_window=spec.sliding_window, rope_local_base_freq=spec.rope_theta_local,
                      query_pre_attn_scalar=spec.head_dim, sliding_window_pattern=6)
    (folder / "config.json").write_text(json.dumps(config))
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = HFTokenizer(models.BPE(vocab, [tuple(m.split(" ")) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(CONTROL_TOKENS)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "chat_template": "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    }))
    return stored
