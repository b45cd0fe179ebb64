"""Sampling filters against direct definitions; seeded draws reproducible; empirical distribution."""
from __future__ import annotations

import numpy as np
import pytest

from engine.sampling import SamplingError, SamplingParams, probabilities, sample

LOGITS = np.log(np.array([[0.4, 0.3, 0.15, 0.1, 0.05]], dtype=np.float32))


def test_greedy_is_argmax() -> None:
    x = np.random.default_rng(0).standard_normal((4, 100)).astype(np.float32)
    assert sample(x, SamplingParams()).tolist() == x.argmax(axis=1).tolist()
    assert sample(x, SamplingParams(temperature=1.0, top_k=1)).tolist() == x.argmax(axis=1).tolist()


def test_top_k() -> None:
    p = probabilities(LOGITS, SamplingParams(temperature=1.0, top_k=2))[0]
    np.testing.assert_allclose(p, [0.4 / 0.7, 0.3 / 0.7, 0, 0, 0], atol=1e-6)


def test_top_p_keeps_smallest_prefix_reaching_p() -> None:
    # cumulative 0.4, 0.7, 0.85: top_p=0.7 keeps {0, 1}; top_p=0.71 keeps {0, 1, 2}
    p = probabilities(LOGITS, SamplingParams(temperature=1.0, top_p=0.7))[0]
    assert (p > 0).tolist() == [True, True, False, False, False]
    p = probabilities(LOGITS, SamplingParams(temperature=1.0, top_p=0.71))[0]
    assert (p > 0).tolist() == [True, True, True, False, False]
    p = probabilities(LOGITS, SamplingParams(temperature=1.0, top_p=0.1))[0]
    assert (p > 0).tolist() == [True, False, False, False, False]


def test_min_p() -> None:
    p = probabilities(LOGITS, SamplingParams(temperature=1.0, min_p=0.3))[0]  # threshold 0.12
    np.testing.assert_allclose(p, np.array([0.4, 0.3, 0.15, 0, 0]) / 0.85, atol=1e-6)


def test_temperature() -> None:
    p = probabilities(LOGITS, SamplingParams(temperature=0.5))[0]
    q = np.array([0.4, 0.3, 0.15, 0.1, 0.05]) ** 2
    np.testing.assert_allclose(p, q / q.sum(), atol=1e-6)


def test_repetition_penalty() -> None:
    x = np.array([[2.0, -2.0, 1.0]], dtype=np.float32)
    params = SamplingParams(repetition_penalty=2.0)
    # greedy: token 0 penalised 2.0 -> 1.0 ties token 2; argmax picks the first
    assert sample(x, params, history=[[0]]).tolist() == [0]
    assert sample(x, SamplingParams(repetition_penalty=4.0), history=[[0]]).tolist() == [2]
    from engine.sampling import apply_repetition_penalty

    np.testing.assert_allclose(apply_repetition_penalty(x, [[0, 1]], 2.0), [[1.0, -4.0, 1.0]])


def test_seeded_and_empirical_distribution() -> None:
    params = SamplingParams(temperature=1.0, seed=7)
    rng_a, rng_b = params.rng(), params.rng()
    x = np.repeat(LOGITS, 4000, axis=0)
    a, b = sample(x, params, rng_a), sample(x, params, rng_b)
    assert a.tolist() == b.tolist()
    freq = np.bincount(a, minlength=5) / len(a)
    np.testing.assert_allclose(freq, [0.4, 0.3, 0.15, 0.1, 0.05], atol=0.025)
    # filtered tokens are never drawn
    c = sample(x, SamplingParams(temperature=1.0, top_k=3, seed=1))
    assert set(c.tolist()) <= {0, 1, 2}


def test_masked_logits() -> None:
    x = np.full((1, 6), -np.inf, dtype=np.float32)
    x[0, 4] = 0.0
    assert sample(x, SamplingParams(temperature=1.0, top_p=0.9, seed=0)).tolist() == [4]
    with pytest.raises(SamplingError):
        sample(np.full((1, 3), -np.inf, dtype=np.float32), SamplingParams(temperature=1.0))


@pytest.mark.parametrize("kwargs", [{"temperature": -1}, {"top_p": 0}, {"top_k": -1}, {"min_p": 2},
                                    {"repetition_penalty": 0}])
def test_bad_params(kwargs: dict) -> None:
    with pytest.raises(SamplingError):
        SamplingParams(**kwargs)
