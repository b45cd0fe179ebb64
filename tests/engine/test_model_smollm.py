"""SmolLM2 end to end: tokenizer, logits, greedy generation, batched KV-cache decoding."""
from __future__ import annotations

import numpy as np
import pytest

from engine import Model, SamplingParams
from engine.errors import ContextOverflow, TokenIdError

pytestmark = pytest.mark.model


def test_model_protocol(smollm: Model) -> None:
    tok = smollm.tokenizer
    assert smollm.logit_width == 49152 == tok.vocab_size
    assert tok.bos_token_id == 1
    assert tok.eos_token_ids[0] == 2
    assert tok.token_bytes[tok.encode(" Paris")[0]] == b" Paris"
    assert tok.encode("<|im_start|>user") [0] == 1
    assert 1 in tok.special_ids and 2 in tok.special_ids
    logits = smollm.logits(tok.encode("The capital of France is"))
    assert logits.dtype == np.float32 and logits.shape == (smollm.logit_width,)
    assert tok.decode([int(logits.argmax())]) == " Paris"


def test_incremental_equals_stateless(smollm: Model) -> None:
    ids = smollm.tokenizer.encode("One, two, three, four")
    session = smollm.start([ids[:2]])
    for t in ids[2:]:
        session.step([[t]])
    np.testing.assert_allclose(session.logits[0], smollm.logits(ids), atol=2e-4, rtol=0)


def test_batch_equals_single(smollm: Model) -> None:
    tok = smollm.tokenizer
    prompts = [tok.encode(p) for p in ("Hello", "The quick brown fox jumps", "1, 2, 3,")]
    session = smollm.start(prompts, prefill_chunk=3)
    for i, p in enumerate(prompts):
        np.testing.assert_allclose(session.logits[i], smollm.logits(p), atol=2e-4, rtol=0)
    # decode 4 greedy steps in the batch, feeding rows different numbers of tokens
    feeds = [[11], [], [28, 29]]
    logits = session.step(feeds)
    for i, (p, f) in enumerate(zip(prompts, feeds)):
        np.testing.assert_allclose(logits[i], smollm.logits(p + f), atol=2e-4, rtol=0)


def test_rollback(smollm: Model) -> None:
    ids = smollm.tokenizer.encode("a b c d e")
    session = smollm.start([ids])
    session.step([[42, 43]])
    session.rollback(0, 3)
    logits = session.step([[ids[-1]]])
    np.testing.assert_allclose(logits[0], smollm.logits(ids), atol=2e-4, rtol=0)


def test_greedy_generation_and_stops(smollm: Model) -> None:
    chat = smollm.tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+2?"}])
    out = smollm.generate_text(chat, max_tokens=40)
    assert "4" in out and "<|im_end|>" not in out
    pieces = list(smollm.stream_text(chat, max_tokens=40))
    assert "".join(pieces) == out
    first_word = out.split()[1]
    cut = smollm.generate_text(chat, max_tokens=40, stop=[first_word])
    assert cut == out[: out.index(first_word)]
    assert len(smollm.tokenizer.encode(smollm.generate_text("Once upon a time", max_tokens=5))) <= 6


def test_seeded_sampling_is_reproducible(smollm: Model) -> None:
    params = SamplingParams(temperature=0.9, top_p=0.95, seed=1234)
    a = smollm.generate_text("Once upon a time", max_tokens=12, sampling=params)
    b = smollm.generate_text("Once upon a time", max_tokens=12, sampling=params)
    assert a == b


def test_bad_inputs(smollm: Model) -> None:
    with pytest.raises(TokenIdError):
        smollm.logits([1, smollm.logit_width + 5])
    with pytest.raises(TokenIdError):
        smollm.logits([-1])
    with pytest.raises(ContextOverflow):
        smollm.logits([1] * (smollm.config.context_length + 1))
    session = smollm.start([[1, 2]], max_new_tokens=0)
    with pytest.raises(ContextOverflow):
        session.step([[3] * smollm.config.context_length])
