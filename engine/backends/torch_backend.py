"""torch backend (CPU or CUDA): the same transformer, its arrays as torch tensors on one device.

Weights are dequantised once by the loader (numpy) and moved here by :meth:`asarray`, so
they live on the device for the model's lifetime; the KV cache is allocated with
:meth:`zeros` on the same device. Everything stays float32 (TF32 matmuls are switched
off for CUDA so results match the numpy backend). Masking by a token bitmask and sampling
run on the device (:meth:`apply_bitmask`, :meth:`sample`), so a decode step moves only
the bitmask in and the chosen ids out. torch is imported when the backend is built.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BackendUnavailable
from .base import Array, Backend


def _import_torch() -> Any:
    """The torch module, or a clear BackendUnavailable."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised only without torch
        raise BackendUnavailable(
            "the torch backend needs PyTorch: pip install 'constrained[torch]'"
        ) from exc
    return torch


class TorchBackend(Backend):
    """torch tensors on ``device`` ("cpu", "cuda", "cuda:1", ...), float32."""

    name = "torch"

    def __init__(self, device: str = "cpu") -> None:
        torch = _import_torch()
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise BackendUnavailable(f"torch does not know the device {device!r}: {exc}") from exc
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable(
                    "device 'cuda' was requested but torch sees no CUDA device "
                    f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})"
                )
            if dev.index is not None and dev.index >= torch.cuda.device_count():
                raise BackendUnavailable(
                    f"device {device!r} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)"
                )
            # process-wide torch switches: full float32 matmuls, as the numpy backend computes
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        elif dev.type != "cpu":
            raise BackendUnavailable(f"the torch backend supports cpu and cuda devices, not {dev.type!r}")
        self.torch = torch
        self.device = dev
        self._shifts = torch.arange(32, dtype=torch.int32, device=dev)

    # -- moving data -------------------------------------------------------------------
    def asarray(self, x: np.ndarray) -> Array:
        arr = np.ascontiguousarray(x, dtype=np.float32)
        if not arr.flags.writeable:  # e.g. a view of a memory-mapped checkpoint
            arr = arr.copy()
        return self.torch.from_numpy(arr).to(self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x
        return x.detach().to("cpu").numpy()

    def zeros(self, shape: tuple[int, ...]) -> Array:
        return self.torch.zeros(shape, dtype=self.torch.float32, device=self.device)

    def index(self, x: Array) -> Array:
        if isinstance(x, self.torch.Tensor):
            return x.to(device=self.device, dtype=self.torch.int64)
        # a copy: index arrays are small and often read-only views (np.broadcast_to)
        return self.torch.from_numpy(np.array(x, dtype=np.int64)).to(self.device)

    # -- transformer ops -----------------------------------------------------------------
    def linear(self, x: Array, w_t: Array, bias: Array | None = None) -> Array:
        y = x @ w_t
        if bias is not None:
            y += bias
        return y

    def rms_norm(self, x: Array, weight: Array, eps: float) -> Array:
        ms = (x * x).mean(dim=-1, keepdim=True)
        return x * self.torch.rsqrt(ms + eps) * weight

    def rope(self, x: Array, cos: Array, sin: Array) -> Array:
        half = x.shape[-1] // 2
        c = cos[:, :, None, :]
        s = sin[:, :, None, :]
        x1 = x[..., :half]
        x2 = x[..., half:]
        return self.torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)

    def attention(self, q: Array, k: Array, v: Array, bias: Array) -> Array:
        B, T, H, hd = q.shape
        K, L = k.shape[1], k.shape[2]
        G = H // K
        # [B, K, G*T, hd]: query heads grouped under their KV head (head h uses KV head h // G)
        qg = q.reshape(B, T, K, G, hd).permute(0, 2, 3, 1, 4).reshape(B, K, G * T, hd)
        s = (qg @ k.transpose(-1, -2)).reshape(B, K, G, T, L)
        s = s + bias[:, None, None, :, :]
        p = self.torch.softmax(s, dim=-1)
        o = p.reshape(B, K, G * T, L) @ v
        return o.reshape(B, K, G, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, H * hd)

    def act_mul(self, gate_up: Array, activation: str) -> Array:
        ff = gate_up.shape[-1] // 2
        g = gate_up[..., :ff]
        u = gate_up[..., ff:]
        F = self.torch.nn.functional
        if activation == "silu":
            return F.silu(g) * u
        return F.gelu(g, approximate="tanh") * u

    def embed(self, table: Array, ids: Array) -> Array:
        return table[self.index(ids)]

    def lm_head(self, h: Array, table: Array) -> Array:
        return h @ table.T

    def write_cache(self, cache: Array, rows: Array, positions: Array, values: Array) -> None:
        cache[self.index(rows), :, self.index(positions)] = values

    # -- on-device masking and sampling --------------------------------------------------------
    def apply_bitmask(self, logits: Array, bitmask: np.ndarray | Array) -> Array:
        """Set logits of tokens whose bit is 0 to -inf, in place; ``bitmask`` int32[B, ceil(W/32)].

        Ids beyond the bitmask's ``32 * words`` are masked as well.
        """
        torch = self.torch
        bits = bitmask if isinstance(bitmask, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(bitmask))
        bits = bits.to(self.device, non_blocking=True).reshape(logits.shape[0], -1)
        allowed = ((bits.unsqueeze(-1) >> self._shifts) & 1).to(torch.bool).reshape(bits.shape[0], -1)
        width = logits.shape[-1]
        if allowed.shape[1] >= width:
            logits.masked_fill_(~allowed[:, :width], float("-inf"))
        else:
            logits[:, : allowed.shape[1]].masked_fill_(~allowed, float("-inf"))
            logits[:, allowed.shape[1]:] = float("-inf")
        return logits

    def filter_logits(self, logits: Array, temperature: float, top_k: int = 0, top_p: float = 1.0,
                      min_p: float = 0.0) -> Array:
        """Temperature-scaled logits with top-k / top-p / min-p filtered entries at -inf.

        Same rules as ``engine.sampling.filter_logits`` (top-p keeps the smallest prefix whose
        mass reaches ``top_p``, at least one token), computed on the device; new array.
        """
        torch = self.torch
        x = logits / temperature if temperature > 0 else logits.clone()
        W = x.shape[-1]
        if top_k and top_k < W:
            kth = torch.topk(x, top_k, dim=-1).values[:, -1:]
            x = x.masked_fill(x < kth, float("-inf"))
        if top_p < 1.0:
            sorted_x, order = torch.sort(x, dim=-1, descending=True, stable=True)
            probs = torch.softmax(sorted_x, dim=-1)
            remove_sorted = (torch.cumsum(probs, dim=-1) - probs) >= top_p
            remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
            x = x.masked_fill(remove, float("-inf"))
        if min_p > 0.0:
            probs = torch.softmax(x, dim=-1)
            x = x.masked_fill(probs < probs.max(dim=-1, keepdim=True).values * min_p, float("-inf"))
        return x

    def sample(self, logits: Array, temperature: float, generator: Any | None = None, *,
               top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> np.ndarray:
        """One id per row: argmax when ``temperature == 0``, else a draw from the filtered softmax.

        Rows are drawn with the Gumbel-max trick (one kernel, no host sync until the ids
        are read back); ``generator`` is a ``torch.Generator`` on this device for seeding.
        """
        torch = self.torch
        if temperature <= 0 or top_k == 1:
            return logits.argmax(dim=-1).to("cpu").numpy()
        x = self.filter_logits(logits, temperature, top_k, top_p, min_p)
        u = torch.rand(x.shape, generator=generator, device=self.device, dtype=torch.float32)
        gumbel = -torch.log(-torch.log(u.clamp_(min=1e-20)))
        return (x + gumbel).argmax(dim=-1).to("cpu").numpy()

    def synchronize(self) -> None:
        """Wait for queued device work (for timing)."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
