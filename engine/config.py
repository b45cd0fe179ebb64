"""Architecture hyper-parameters shared by every model file format (GGUF, HF folders)."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UnsupportedArchitecture

SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "gemma3")


@dataclass(frozen=True)
class ModelConfig:
    """What the transformer needs to know about a checkpoint, format-independent.

    Weights always use the HF layout (RoPE rotates halves); GGUF `llama` Q/K weights are
    un-permuted when loaded, so one rotation code path serves every architecture.
    """

    arch: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab_size: int
    context_length: int
    rope_theta: float
    norm_eps: float
    tie_embeddings: bool = True
    # gemma3 details (neutral defaults for llama / qwen2)
    rope_theta_local: float | None = None  # rope base of sliding-window layers
    rope_scaling_factor: float = 1.0  # linear RoPE scaling of global layers
    sliding_window: int | None = None
    sliding_window_pattern: int = 0  # every Nth layer is global; 0 = no sliding layers
    sliding_layers: tuple[bool, ...] | None = None  # explicit per-layer flags (overrides the pattern)
    embed_scale: float = 1.0
    attn_scale: float | None = None  # None = 1/sqrt(head_dim)
    activation: str = "silu"  # "silu" | "gelu_tanh"

    def __post_init__(self) -> None:
        if self.arch not in SUPPORTED_ARCHITECTURES:
            raise UnsupportedArchitecture(
                f"architecture {self.arch!r} is not supported (supported: {', '.join(SUPPORTED_ARCHITECTURES)})"
            )
        if self.n_heads % self.n_kv_heads:
            raise UnsupportedArchitecture(
                f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}"
            )
        if self.head_dim % 2:
            raise UnsupportedArchitecture(f"head_dim={self.head_dim} must be even for RoPE")

    @property
    def scale(self) -> float:
        """Attention logit scale."""
        return self.attn_scale if self.attn_scale is not None else self.head_dim**-0.5

    def is_sliding(self, layer: int) -> bool:
        """Whether layer `layer` uses sliding-window attention (gemma3: 5 local : 1 global)."""
        if not self.sliding_window:
            return False
        if self.sliding_layers is not None:
            return self.sliding_layers[layer]
        if not self.sliding_window_pattern:
            return False
        return (layer + 1) % self.sliding_window_pattern != 0
