"""llama-cpp-python integration: the documented ``logits_processor`` contract.

llama-cpp-python calls ``processor(input_ids, scores)`` with ``input_ids`` a 1-D
``np.intc`` array of the whole context (prompt + generated) and ``scores`` the 1-D
``np.single`` logits of the next position, and samples from what it returns. The loop
below does exactly that (greedy and seeded sampling) over the real GPT-2 vocabulary;
outputs are checked with Python's `re`. When llama_cpp itself is importable, real
``Llama`` runs on the default model's GGUF are checked too (completion under a regex, a
sampled chat completion under a JSON Schema, validated with `jsonschema`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import jsonschema
import numpy as np
import pytest

import constrained
from constrained import TokenRejected, Vocabulary
from constrained.integrations.llama_cpp import LlamaCppLogitsProcessor

EMAIL = r"[a-z]{2,5}@[a-z]{2,4}\.(com|org)"


@pytest.fixture(scope="module")
def gpt2(load_vocab: Callable[[str], Vocabulary]) -> Vocabulary:
    return load_vocab("gpt-2")


def _llama_style_loop(proc: LlamaCppLogitsProcessor, prompt: list[int], n_vocab: int,
                      eos: set[int], seed: int, greedy: bool, max_tokens: int = 64) -> list[int]:
    """What llama-cpp-python's generate does around a logits processor (logits stand-in: noise)."""
    rng = np.random.default_rng(seed)
    ids = np.array(prompt, dtype=np.intc)
    out: list[int] = []
    for _ in range(max_tokens):
        scores = rng.normal(0, 2, size=n_vocab).astype(np.single)
        result = proc(ids, scores)
        assert result is scores and result.dtype == np.single and result.shape == (n_vocab,)
        if greedy:
            token = int(np.argmax(result))
        else:
            p = np.exp(result - result.max())
            p /= p.sum()
            token = int(rng.choice(n_vocab, p=p))
        if token in eos:
            return out
        out.append(token)
        ids = np.append(ids, np.intc(token))
    raise AssertionError(f"no EOS within {max_tokens} tokens: {out}")


@pytest.mark.parametrize("greedy", [True, False])
def test_processor_in_a_llama_style_loop(gpt2: Vocabulary, greedy: bool) -> None:
    c = constrained.compile_regex(EMAIL, gpt2)
    n_vocab = gpt2.logit_width + 3  # padded logits: the extra ids must never be picked
    for seed in range(3):
        proc = LlamaCppLogitsProcessor(c)
        out = _llama_style_loop(proc, [464, 3139, 318], n_vocab, set(gpt2.eos_token_ids), seed, greedy)
        text = gpt2.decode(out).decode()
        assert re.fullmatch(EMAIL, text), text
        assert proc.matcher is not None and proc.matcher.is_accepting()


def test_processor_masks_exactly_the_matcher_mask(gpt2: Vocabulary) -> None:
    c = constrained.compile_regex(r"(ab|cd)\d+", gpt2)
    proc = LlamaCppLogitsProcessor(c)
    ref = c.matcher()
    prompt = [1, 2, 3]
    history: list[int] = []
    lookup = {gpt2.tokens[i]: i for i in gpt2.text_token_ids.tolist()}
    for piece in (b"ab", b"1", b"23"):
        scores = np.zeros(gpt2.logit_width, np.single)
        proc(np.array(prompt + history, np.intc), scores)
        assert np.array_equal(np.isfinite(scores), ref.mask())
        token = lookup[piece]
        ref.advance(token)
        history.append(token)


def test_processor_errors_and_reset(gpt2: Vocabulary) -> None:
    c = constrained.compile_regex(r"\d+", gpt2)
    proc = LlamaCppLogitsProcessor(c)
    w = gpt2.logit_width
    proc(np.array([5, 6], np.intc), np.zeros(w, np.single))
    letter = gpt2.tokens.index(b"z")
    with pytest.raises(TokenRejected):
        proc(np.array([5, 6, letter], np.intc), np.zeros(w, np.single))
    with pytest.raises(constrained.BitmaskShapeError):
        proc(np.array([[5, 6]], np.intc), np.zeros(w, np.single))
    with pytest.raises(constrained.BitmaskShapeError):
        proc(np.array([5], np.intc), np.zeros(w, np.single))  # shorter than the prompt
    proc.reset()
    scores = proc(np.array([5], np.intc), np.zeros(w, np.single))
    assert np.array_equal(np.isfinite(scores), c.matcher().mask())


@pytest.mark.model
def test_real_llama_cpp_completion() -> None:
    llama_cpp = pytest.importorskip(
        "llama_cpp", reason="llama-cpp-python not installed (pip install 'constrained[llama-cpp]')")
    from constrained.integrations.llama_cpp import vocabulary_from_llama
    from engine.registry import model_path

    llm = llama_cpp.Llama(model_path=str(model_path()), n_ctx=256, verbose=False, seed=0)
    vocab = vocabulary_from_llama(llm)
    proc = LlamaCppLogitsProcessor(constrained.compile_regex(r"\d{3}-\d{4}", vocab))
    result = llm("My phone number is ", max_tokens=16, temperature=0.0,
                 logits_processor=llama_cpp.LogitsProcessorList([proc]))
    text = result["choices"][0]["text"]
    assert re.fullmatch(r"\d{3}-\d{4}", text), text
    assert result["choices"][0]["finish_reason"] == "stop"  # ended on EOS, not the budget
    # a chat completion under a JSON Schema, sampled
    schema = {"type": "object", "additionalProperties": False, "required": ["city", "population"],
              "properties": {"city": {"type": "string", "maxLength": 12},
                             "population": {"type": "integer", "minimum": 0}}}
    proc = LlamaCppLogitsProcessor(constrained.compile_json_schema(schema, vocab))
    chat = llm.create_chat_completion([{"role": "user", "content": "Describe Paris as JSON."}],
                                      max_tokens=64, temperature=0.7, seed=1,
                                      logits_processor=llama_cpp.LogitsProcessorList([proc]))
    content = chat["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), schema)
