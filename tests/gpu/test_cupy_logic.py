"""The CuPy backend's array logic, run on the CPU with numpy standing in for cupy.

CuPy mirrors numpy's API, so the backend's code can be exercised everywhere by handing it
a thin numpy-backed stand-in module: op by op against the numpy backend, then whole tiny
models of every architecture through the shared transformer code. On a real GPU,
tests/gpu/test_cuda_backends.py runs the same backend with cupy itself.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import numpy as np
import pytest

from engine.backends.cupy_backend import CupyBackend
from engine.backends.numpy_backend import NumpyBackend
from engine.errors import BackendUnavailable
from tests.gpu.conftest import TINY_IDS


class _Device:
    """Stands in for cupy.cuda.Device (a context manager)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def use(self) -> None:
        return None


def _numpy_as_cupy(seed: int = 0) -> Any:
    """A namespace with the cupy functions the backend calls, implemented by numpy."""
    rng = np.random.default_rng(seed)
    names = ["asarray", "zeros", "float32", "int64", "int32", "arange", "sqrt", "concatenate",
             "ascontiguousarray", "exp", "tanh", "bool_", "inf", "maximum", "log", "partition",
             "argsort", "take_along_axis", "cumsum", "empty_like"]
    ns = SimpleNamespace(**{n: getattr(np, n) for n in names})
    ns.asnumpy = np.asarray
    ns.random = SimpleNamespace(random=lambda shape, dtype=np.float64: rng.random(shape, dtype=dtype))
    ns.cuda = SimpleNamespace(Device=lambda i=0: _Device(),
                              Stream=SimpleNamespace(null=SimpleNamespace(synchronize=lambda: None)))
    return ns


def _stand_in_backend() -> CupyBackend:
    be = object.__new__(CupyBackend)
    be.cp = _numpy_as_cupy()
    be.device = _Device()
    be._shifts = np.arange(32, dtype=np.int32)
    return be


def test_ops_match_numpy_backend() -> None:
    nb, cb = NumpyBackend(), _stand_in_backend()
    rng = np.random.default_rng(0)
    r = lambda *s: rng.normal(size=s).astype(np.float32)
    x, w, b, g = r(2, 3, 64), r(64, 48), r(48), r(64)
    np.testing.assert_allclose(cb.linear(x, w, b.copy()), nb.linear(x, w, b.copy()), rtol=1e-6)
    np.testing.assert_allclose(cb.rms_norm(x, g, 1e-5), nb.rms_norm(x, g, 1e-5), rtol=1e-5, atol=1e-6)
    for act in ("silu", "gelu_tanh"):
        gu = r(2, 3, 96)
        np.testing.assert_allclose(cb.act_mul(gu, act), nb.act_mul(gu, act), rtol=1e-6, atol=1e-7)
    q, cos, sin = r(2, 5, 4, 16), r(2, 5, 8), r(2, 5, 8)
    np.testing.assert_allclose(cb.rope(q, cos, sin), nb.rope(q, cos, sin), rtol=1e-6)
    k, v = r(2, 2, 7, 16), r(2, 2, 7, 16)
    bias = np.zeros((2, 5, 7), np.float32)
    bias[0, :, 5:] = -1e30
    np.testing.assert_allclose(cb.attention(q, k, v, bias.copy()), nb.attention(q, k, v, bias.copy()),
                               rtol=1e-5, atol=1e-6)
    cache_a, cache_b = np.zeros((2, 3, 10, 4), np.float32), np.zeros((2, 3, 10, 4), np.float32)
    rows, pos, vals = np.array([[0, 0], [1, 1]]), np.array([[4, 5], [0, 1]]), r(2, 2, 3, 4)
    nb.write_cache(cache_a, rows, pos, vals)
    cb.write_cache(cache_b, rows, pos, vals)
    assert np.array_equal(cache_a, cache_b)


def test_bitmask_and_sampling() -> None:
    cb = _stand_in_backend()
    rng = np.random.default_rng(1)
    allowed = rng.random((2, 96)) < 0.3
    allowed[:, 3] = True
    packed = np.packbits(allowed, axis=-1, bitorder="little").view("<i4").astype(np.int32)
    logits = rng.normal(size=(2, 70)).astype(np.float32)
    cb.apply_bitmask(logits, packed)
    assert np.array_equal(np.isfinite(logits), allowed[:, :70])
    assert np.array_equal(cb.sample(logits, 0.0), logits.argmax(axis=-1))
    draws = np.stack([cb.sample(logits, 1.0) for _ in range(300)])
    assert allowed[0, draws[:, 0]].all() and allowed[1, draws[:, 1]].all()
    wide = np.zeros((2, 100), np.float32)
    cb.apply_bitmask(wide, packed)
    assert not np.isfinite(wide[:, 96:]).any()


def test_tiny_models_through_the_shared_transformer(tiny_gguf: Path) -> None:
    from engine import load_model
    from engine.formats import open_checkpoint
    from engine.model import Model

    ref = load_model(tiny_gguf)
    alt = Model(open_checkpoint(tiny_gguf), backend=_stand_in_backend())
    np.testing.assert_allclose(alt.logits(TINY_IDS), ref.logits(TINY_IDS), atol=1e-5, rtol=1e-5)
    sa, sr = alt.start([TINY_IDS[:6], TINY_IDS[:2]], 4), ref.start([TINY_IDS[:6], TINY_IDS[:2]], 4)
    for feed in ([[7], [8]], [[9, 10, 11], []], [[12], [13]]):
        np.testing.assert_allclose(sa.step(feed), sr.step(feed), atol=1e-5, rtol=1e-5)


def test_missing_cupy_or_cuda_is_a_clear_error() -> None:
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailable, match="CuPy"):
            CupyBackend("cuda")
    with pytest.raises(BackendUnavailable, match="CUDA devices only"):
        CupyBackend("cpu")


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p", "min_p"),
    [(0.7, 50, 1.0, 0.0), (1.0, 0, 0.9, 0.0), (1.3, 0, 1.0, 0.05), (0.8, 40, 0.8, 0.02)],
)
def test_device_filters_equal_engine_sampling(temperature: float, top_k: int, top_p: float,
                                              min_p: float) -> None:
    from engine.sampling import SamplingParams, filter_logits

    cb = _stand_in_backend()
    logits = (np.random.default_rng(5).normal(size=(3, 500)) * 3).astype(np.float32)
    want = filter_logits(logits, SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p,
                                                min_p=min_p))
    got = cb.filter_logits(logits, temperature, top_k, top_p, min_p)
    assert np.array_equal(np.isfinite(got), np.isfinite(want))
    keep = np.isfinite(want)
    for _ in range(30):
        ids = cb.sample(logits, temperature, top_k=top_k, top_p=top_p, min_p=min_p)
        assert keep[np.arange(3), ids].all()
