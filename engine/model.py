"""The Llama-family transformer (llama, qwen2, gemma3) with a preallocated, batched KV cache.

One code path: per-architecture differences are data (biases, extra norms, activation,
sliding windows, RoPE bases) held in `ModelConfig` and the weights. Array work goes through
a `Backend`, so the same code can run on numpy (default), torch or CuPy.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends import Backend, get_backend
from .backends.base import Array
from .config import ModelConfig
from .errors import ContextOverflow, EngineError, ModelFormatError, TokenIdError
from .formats import Checkpoint, open_checkpoint
from .tokenizer import Tokenizer

if TYPE_CHECKING:
    from .sampling import SamplingParams

NEG_INF = np.float32(-1e30)  # finite "minus infinity" keeps softmax NaN-free on empty rows


@dataclass
class LayerWeights:
    """One transformer block's weights, matrices stored [in, out] for x @ W."""

    attn_norm: Array
    qkv: Array  # [d, (H + 2K) * hd]
    qkv_bias: Array | None
    q_norm: Array | None
    k_norm: Array | None
    o: Array  # [H * hd, d]
    post_attn_norm: Array | None
    ffn_norm: Array
    gate_up: Array  # [d, 2 * ff]
    down: Array  # [ff, d]
    post_ffn_norm: Array | None


def _opt(ckpt: Checkpoint, name: str) -> np.ndarray | None:
    return ckpt.tensor(name) if ckpt.has(name) else None


def load_layer(ckpt: Checkpoint, i: int, be: Backend) -> LayerWeights:
    """Read block `i` from a checkpoint, fusing Q/K/V and gate/up into single matmuls."""
    p = f"blk.{i}."
    q, k, v = (ckpt.tensor(p + n) for n in ("attn_q.weight", "attn_k.weight", "attn_v.weight"))
    biases = [_opt(ckpt, p + n) for n in ("attn_q.bias", "attn_k.bias", "attn_v.bias")]
    if any(b is not None for b in biases):
        full = [b if b is not None else np.zeros(w.shape[0], np.float32) for b, w in zip(biases, (q, k, v))]
        qkv_bias: Array | None = be.asarray(np.concatenate(full))
    else:
        qkv_bias = None
    qkv = be.asarray(np.concatenate([q, k, v], axis=0).T)
    del q, k, v
    gate, up = ckpt.tensor(p + "ffn_gate.weight"), ckpt.tensor(p + "ffn_up.weight")
    gate_up = be.asarray(np.concatenate([gate, up], axis=0).T)
    del gate, up

    def norm(name: str) -> Array | None:
        t = _opt(ckpt, p + name)
        return None if t is None else be.asarray(t)

    attn_norm, ffn_norm = norm("attn_norm.weight"), norm("ffn_norm.weight")
    if attn_norm is None or ffn_norm is None:
        raise ModelFormatError(f"{ckpt.path}: block {i} lacks attn_norm/ffn_norm")
    return LayerWeights(
        attn_norm=attn_norm,
        qkv=qkv,
        qkv_bias=qkv_bias,
        q_norm=norm("attn_q_norm.weight"),
        k_norm=norm("attn_k_norm.weight"),
        o=be.asarray(ckpt.tensor(p + "attn_output.weight").T),
        post_attn_norm=norm("post_attention_norm.weight"),
        ffn_norm=ffn_norm,
        gate_up=gate_up,
        down=be.asarray(ckpt.tensor(p + "ffn_down.weight").T),
        post_ffn_norm=norm("post_ffw_norm.weight"),
    )


class Model:
    """A loaded model: tokenizer, weights, and stateless / incremental forward passes.

    LM protocol used by `constrained`: `tokenizer`, `logit_width`, `logits(ids)`,
    `start(prompts)` -> `Session` (batched incremental decoding), `generate_text`, `stream_text`.
    """

    def __init__(self, ckpt: Checkpoint, backend: str | Backend = "numpy") -> None:
        self.backend: Backend = get_backend(backend) if isinstance(backend, str) else backend
        self.config: ModelConfig = ckpt.config
        self.path: Path = ckpt.path
        self.tokenizer: Tokenizer = ckpt.tokenizer()
        be, cfg = self.backend, self.config
        self.embeddings: Array = be.asarray(ckpt.tensor("token_embd.weight"))
        self.output: Array = self.embeddings if cfg.tie_embeddings else be.asarray(ckpt.tensor("output.weight"))
        self.output_norm: Array = be.asarray(ckpt.tensor("output_norm.weight"))
        self.layers: list[LayerWeights] = [load_layer(ckpt, i, be) for i in range(cfg.n_layers)]
        rope_freqs = _opt(ckpt, "rope_freqs.weight")
        self._inv_freq_global = self._inv_freq(cfg.rope_theta, rope_freqs) / cfg.rope_scaling_factor
        self._inv_freq_local = self._inv_freq(cfg.rope_theta_local or cfg.rope_theta, None)
        self.logit_width: int = int(self.output.shape[0])
        self.vocab_rows: int = int(self.embeddings.shape[0])
        if self.tokenizer.vocab_size > self.logit_width:
            raise ModelFormatError(
                f"{ckpt.path}: tokenizer has {self.tokenizer.vocab_size} tokens but the output has {self.logit_width} rows"
            )

    def _inv_freq(self, theta: float, factors: np.ndarray | None) -> np.ndarray:
        hd = self.config.head_dim
        inv = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        if factors is not None:
            inv = inv / factors.astype(np.float64)
        return inv

    def __repr__(self) -> str:
        c = self.config
        return f"Model({self.path.name}, arch={c.arch}, layers={c.n_layers}, d={c.d_model}, vocab={self.logit_width})"

    # ------------------------------------------------------------------ forward
    def _rope_tables(self, positions: np.ndarray, inv_freq: np.ndarray) -> tuple[Array, Array]:
        ang = positions[..., None].astype(np.float64) * inv_freq
        be = self.backend
        return be.asarray(np.cos(ang).astype(np.float32)), be.asarray(np.sin(ang).astype(np.float32))

    def forward(
        self,
        kv: KVCache,
        tokens: np.ndarray,
        counts: np.ndarray,
        on_device: bool = False,
    ) -> np.ndarray:
        """Run `tokens` [B, T] (row b has `counts[b]` real tokens, left-aligned) through the model.

        `on_device=True` returns the backend's array instead (no host copy; on CUDA the call
        returns while the GPU still works, so the caller can overlap CPU work with it).

        Keys/values are written at positions `kv.lengths[b] + t`; returns float32 logits
        [B, W] of each row's last real token (rows with count 0 get garbage; callers mask).
        """
        cfg, be = self.config, self.backend
        B, T = tokens.shape
        pos = kv.lengths[:, None] + np.arange(T)[None, :]  # [B, T]
        L = int(pos.max()) + 1
        kv.ensure_capacity(L)
        # additive attention bias [B, T, L]: causal (+ sliding window for local layers)
        j = np.arange(L)[None, None, :]
        causal = j <= pos[:, :, None]
        bias_global = be.asarray(np.where(causal, np.float32(0), NEG_INF))
        bias_local = bias_global
        if cfg.sliding_window:
            local = causal & (j > pos[:, :, None] - cfg.sliding_window)
            bias_local = be.asarray(np.where(local, np.float32(0), NEG_INF))
        cos_g, sin_g = self._rope_tables(pos, self._inv_freq_global)
        cos_l, sin_l = (cos_g, sin_g)
        if cfg.rope_theta_local is not None:
            cos_l, sin_l = self._rope_tables(pos, self._inv_freq_local)
        rows = be.index(np.broadcast_to(np.arange(B)[:, None], (B, T)))
        cols = be.index(pos)
        H, K, hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        x = be.embed(self.embeddings, be.index(tokens))
        if cfg.embed_scale != 1.0:
            x = x * np.float32(cfg.embed_scale)
        scale = np.float32(cfg.scale)
        for li, w in enumerate(self.layers):
            sliding = cfg.is_sliding(li)
            h = be.rms_norm(x, w.attn_norm, cfg.norm_eps)
            qkv = be.linear(h, w.qkv, w.qkv_bias)
            q = qkv[..., : H * hd].reshape(B, T, H, hd)
            k = qkv[..., H * hd : (H + K) * hd].reshape(B, T, K, hd)
            v = qkv[..., (H + K) * hd :].reshape(B, T, K, hd)
            if w.q_norm is not None:
                q = be.rms_norm(q, w.q_norm, cfg.norm_eps)
            if w.k_norm is not None:
                k = be.rms_norm(k, w.k_norm, cfg.norm_eps)
            c, s = (cos_l, sin_l) if sliding else (cos_g, sin_g)
            q = be.rope(q, c, s) * scale
            k = be.rope(k, c, s)
            be.write_cache(kv.k[li], rows, cols, k)
            be.write_cache(kv.v[li], rows, cols, v)
            attn = be.attention(q, kv.k[li][:, :, :L], kv.v[li][:, :, :L], bias_local if sliding else bias_global)
            o = be.linear(attn, w.o)
            if w.post_attn_norm is not None:
                o = be.rms_norm(o, w.post_attn_norm, cfg.norm_eps)
            x = x + o
            h = be.rms_norm(x, w.ffn_norm, cfg.norm_eps)
            f = be.linear(be.act_mul(be.linear(h, w.gate_up), cfg.activation), w.down)
            if w.post_ffn_norm is not None:
                f = be.rms_norm(f, w.post_ffn_norm, cfg.norm_eps)
            x = x + f
        last = x[np.arange(B), np.maximum(counts - 1, 0)]  # [B, d]
        h = be.rms_norm(last, self.output_norm, cfg.norm_eps)
        out = be.lm_head(h, self.output)
        if on_device:
            return out
        return be.to_numpy(out).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ public API
    def check_ids(self, ids: Sequence[int]) -> None:
        """Raise TokenIdError when an id cannot be fed to the model."""
        for i in ids:
            if not 0 <= int(i) < self.vocab_rows:
                raise TokenIdError(f"token id {i} is out of range [0, {self.vocab_rows})")

    def start(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int = 256,
        prefill_chunk: int = 256,
    ) -> Session:
        """Prefill a batch of prompts (different lengths allowed) and return the decoding Session.

        The session's `logits` hold float32 [batch, logit_width] for each row's last token.
        """
        return Session(self, prompts, max_new_tokens=max_new_tokens, prefill_chunk=prefill_chunk)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        """Next-token logits float32[logit_width] after `ids` (stateless)."""
        return self.start([list(ids)], max_new_tokens=0).logits[0]

    def generate_text(
        self,
        prompt: str | Sequence[int],
        max_tokens: int = 128,
        sampling: SamplingParams | None = None,
        stop: Sequence[str] = (),
        add_bos: bool | None = None,
    ) -> str:
        """Generate a continuation of `prompt` (text or ids); stops on EOS, a stop string, or max_tokens."""
        from .generation import generate_text

        return generate_text(self, prompt, max_tokens=max_tokens, sampling=sampling, stop=stop, add_bos=add_bos)

    def stream_text(
        self,
        prompt: str | Sequence[int],
        max_tokens: int = 128,
        sampling: SamplingParams | None = None,
        stop: Sequence[str] = (),
        add_bos: bool | None = None,
    ) -> Iterator[str]:
        """Like `generate_text` but yields text pieces as they become final."""
        from .generation import stream_text

        return stream_text(self, prompt, max_tokens=max_tokens, sampling=sampling, stop=stop, add_bos=add_bos)


class KVCache:
    """Per-layer key/value arrays [B, K, capacity, hd], grown by doubling when needed."""

    def __init__(self, model: Model, batch: int, capacity: int) -> None:
        self.model = model
        cfg = model.config
        self.shape = (batch, cfg.n_kv_heads, max(capacity, 1), cfg.head_dim)
        be = model.backend
        self.k: list[Array] = [be.zeros(self.shape) for _ in range(cfg.n_layers)]
        self.v: list[Array] = [be.zeros(self.shape) for _ in range(cfg.n_layers)]
        self.lengths = np.zeros(batch, dtype=np.int64)

    @property
    def capacity(self) -> int:
        """Positions each row can hold before the arrays grow."""
        return self.shape[2]

    def ensure_capacity(self, needed: int) -> None:
        """Grow (copying) so that positions [0, needed) fit."""
        if needed <= self.capacity:
            return
        new_cap = max(needed, 2 * self.capacity)
        be = self.model.backend
        shape = (self.shape[0], self.shape[1], new_cap, self.shape[3])
        for store in (self.k, self.v):
            for i, old in enumerate(store):
                new = be.zeros(shape)
                new[:, :, : self.capacity] = old
                store[i] = new
        self.shape = shape


class Session:
    """Batched incremental decoding over a KV cache.

    `step(rows)` feeds each row zero, one or several tokens (several = a prefill chunk, e.g.
    for jump-forward) and returns float32 [batch, logit_width] logits after each row's last
    token; `rollback(row, n)` forgets a row's last n tokens. Not thread-safe (one per thread).
    """

    def __init__(
        self,
        model: Model,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int = 256,
        prefill_chunk: int = 256,
    ) -> None:
        if not prompts:
            raise EngineError("start() needs at least one prompt")
        rows = [[int(t) for t in p] for p in prompts]
        for i, r in enumerate(rows):
            if not r:
                raise EngineError(f"prompt {i} is empty (feed at least one token, e.g. BOS)")
            model.check_ids(r)
        ctx = model.config.context_length
        longest = max(len(r) for r in rows)
        if longest > ctx:
            raise ContextOverflow(f"prompt of {longest} tokens exceeds the context length {ctx}")
        self.model = model
        self.prefill_chunk = max(1, int(prefill_chunk))
        self.cache = KVCache(model, len(rows), min(ctx, longest + max(0, max_new_tokens)))
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.logits = np.zeros((len(rows), model.logit_width), dtype=np.float32)
        pending = rows
        while any(pending):
            chunk = [r[: self.prefill_chunk] for r in pending]
            self.step(chunk)
            pending = [r[self.prefill_chunk :] for r in pending]

    @property
    def batch_size(self) -> int:
        """Number of rows."""
        return len(self.tokens)

    @property
    def lengths(self) -> list[int]:
        """Tokens held per row."""
        return [len(t) for t in self.tokens]

    def step(self, new_tokens: Sequence[Sequence[int]]) -> np.ndarray:
        """Feed `new_tokens[b]` to row b; returns (and stores in `.logits`) float32 [B, W]."""
        if len(new_tokens) != self.batch_size:
            raise EngineError(f"step() got {len(new_tokens)} rows, the session has {self.batch_size}")
        rows = [[int(t) for t in r] for r in new_tokens]
        ctx = self.model.config.context_length
        for b, r in enumerate(rows):
            self.model.check_ids(r)
            if len(self.tokens[b]) + len(r) > ctx:
                raise ContextOverflow(
                    f"row {b}: {len(self.tokens[b])} + {len(r)} tokens exceed the context length {ctx}"
                )
        counts = np.array([len(r) for r in rows], dtype=np.int64)
        if counts.max() == 0:
            return self.logits
        T = int(counts.max())
        # padding repeats the row's last real token (values never attended by real tokens)
        padded = np.zeros((self.batch_size, T), dtype=np.int64)
        for b, r in enumerate(rows):
            if r:
                padded[b, : len(r)] = r
                padded[b, len(r) :] = r[-1]
        logits = self.model.forward(self.cache, padded, counts)
        active = counts > 0
        self.logits = np.where(active[:, None], logits, self.logits)
        for b, r in enumerate(rows):
            self.tokens[b].extend(r)
        self.cache.lengths += counts
        return self.logits

    def rollback(self, row: int, n: int) -> None:
        """Forget the last `n` tokens of `row` (their cache entries are overwritten later).

        The stored logits of that row become stale: feed at least one token before using them.
        """
        if not 0 <= n <= len(self.tokens[row]):
            raise EngineError(f"cannot roll back {n} tokens of row {row} holding {len(self.tokens[row])}")
        if n:
            del self.tokens[row][-n:]
            self.cache.lengths[row] -= n


def load_model(
    path: str | Path | None = None, *, backend: str = "numpy", device: str | None = None, **provision: Any
) -> Model:
    """Load a GGUF file or HF folder; with no path, the default model (provisioned on first use).

    `backend` ("numpy", "torch", "cupy") and `device` ("cpu", "cuda", "cuda:1") choose where the
    weights and KV cache live; see `engine.backends.get_backend`.
    """
    be = get_backend(backend, device)  # fail fast, before reading the checkpoint
    if path is None:
        from .registry import model_path

        path = model_path(**provision)
    return Model(open_checkpoint(path), backend=be)
