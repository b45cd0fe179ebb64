"""Decoding-loop tests with a fake LM and a brute-force reference matcher (no real model).

The expected outputs come from an independent, step-by-step reference decoder written here
(argmax over the allowed set, one token per forward pass), never from the code under test.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import constrained
from constrained.errors import (
    IncompleteOutput,
    OutputTypeError,
    PromptError,
    SamplingError,
)
from constrained.generation.output_types import OutputSpec
from constrained.generation.sampling import SamplingParams, sample_token
from tests.generate_fakes import FakeModel, SetConstraint, fake_logits

WORDS = ["yes", "no", "abcd", "abc!", "John", "Jo", "{\"name\": \"John\"}", "ab"]
JSON_LANG = ['{"name": "John", "age": 12}', '{"name": "Jo", "age": 123}', '{"name": "Jo", "age": 7}']


def set_spec(model: FakeModel, strings: Sequence[str]) -> OutputSpec:
    return OutputSpec(
        key=("set", tuple(strings)), description="finite set",
        compile=lambda get_vocab: SetConstraint(strings, model), parse=lambda text: text,
    )


def reference_greedy(model: FakeModel, prompt_ids: list[int], strings: Sequence[str] | None, max_tokens: int) -> str:
    """One token per step: argmax of the logits over the tokens that keep a valid completion."""
    tok = model.tokenizer
    lang = [s.encode() for s in strings] if strings is not None else None
    ids: list[int] = []
    out = b""
    for _ in range(max_tokens):
        logits = fake_logits(prompt_ids + ids, model.logit_width)
        best, best_val = None, -np.inf
        for t in range(model.logit_width):
            if t >= len(tok.token_bytes):
                continue
            if t in tok.eos_token_ids:
                ok = lang is None or out in lang
            elif t in tok.special_ids:
                ok = False
            else:
                ok = lang is None or any(s.startswith(out + tok.token_bytes[t]) for s in lang)
            if ok and logits[t] > best_val:
                best, best_val = t, logits[t]
        assert best is not None
        if best in tok.eos_token_ids:
            break
        ids.append(best)
        out += tok.token_bytes[best]
        if lang is not None and [s for s in lang if s.startswith(out)] == [out]:
            break  # only EOS remains: the output is complete
    return out.decode()


def prompt_ids(model: FakeModel, text: str) -> list[int]:
    tok = model.tokenizer
    return tok.encode(tok.apply_chat_template([{"role": "user", "content": text}]))


@pytest.mark.parametrize("prompt", ["say", "pick one", "x", "hello there"])
def test_greedy_matches_reference_without_jump(prompt: str) -> None:
    model = FakeModel()
    got = constrained.generate(model, prompt, set_spec(model, WORDS), jump_forward=False)
    assert got in WORDS
    assert got == reference_greedy(model, prompt_ids(model, prompt), WORDS, 64)


@pytest.mark.parametrize("prompt", ["say", "hello there"])
def test_free_text_matches_reference(prompt: str) -> None:
    model = FakeModel()
    got = constrained.generate(model, prompt, None, max_tokens=12)
    assert got == reference_greedy(model, prompt_ids(model, prompt), None, 12)


def test_jump_forward_feeds_forced_tokens_in_the_prompt_chunk() -> None:
    model = FakeModel()
    res = constrained.generate(model, "json", set_spec(model, JSON_LANG), return_stats=True)
    assert res.text in JSON_LANG
    tok = model.tokenizer
    # forced prefix '{"name": "Jo' -> canonical tokens {" name ": ' "' Jo ; the last one is dropped
    forced = [tok.encode(s)[0] for s in ['{"', "name", '":', ' "']]
    assert model.starts[0][0][-4:] == forced
    assert res.stats.forced_tokens >= 4
    assert res.stats.passes_saved >= 4
    assert res.stats.forward_passes + res.stats.passes_saved == res.stats.generated_tokens
    no_jump = constrained.generate(model, "json", set_spec(model, JSON_LANG), jump_forward=False, return_stats=True)
    assert no_jump.text in JSON_LANG
    assert no_jump.stats.passes_saved == 0
    assert res.stats.forward_passes < no_jump.stats.forward_passes


def test_jump_forward_chunks_ride_along_with_sampled_tokens() -> None:
    model = FakeModel()
    lang = ['{"name": "John", "age": 12}', '{"name": "Jo", "age": 7}']
    res = constrained.generate(model, "j", set_spec(model, lang), return_stats=True)
    assert res.text in lang
    # after the model picks between 'John' / 'Jo', the rest up to the digits is forced
    assert any(max(c) > 1 for c in model.calls), model.calls
    assert res.stats.forward_passes + res.stats.passes_saved == res.stats.generated_tokens


def test_batch_equals_one_at_a_time_greedy_and_sampled() -> None:
    model = FakeModel()
    prompts = ["a", "bb", "pick", "json please"]
    lang = WORDS + JSON_LANG
    for kwargs in ({}, {"temperature": 1.0, "seed": 3}, {"temperature": 0.7, "top_p": 0.9, "seed": 11}):
        batch = constrained.generate(model, prompts, set_spec(model, lang), **kwargs)
        single = [constrained.generate(model, p, set_spec(model, lang), **kwargs) for p in prompts]
        assert batch == single
        assert all(b in lang for b in batch)


def test_seeded_sampling_is_reproducible_and_seed_dependent() -> None:
    model = FakeModel()
    lang = [f"{a}{b}" for a in "abcdefgh" for b in "xyz01234"]
    spec = set_spec(model, lang)
    runs = {s: constrained.generate(model, "go", spec, temperature=2.0, seed=s) for s in range(12)}
    again = {s: constrained.generate(model, "go", spec, temperature=2.0, seed=s) for s in range(12)}
    assert runs == again
    assert len(set(runs.values())) > 3
    assert all(v in lang for v in runs.values())


def test_max_tokens_raises_incomplete_output_with_partial_text() -> None:
    model = FakeModel()
    with pytest.raises(IncompleteOutput) as info:
        constrained.generate(model, "json", set_spec(model, JSON_LANG), max_tokens=3, jump_forward=False)
    partial = info.value.partial
    assert partial and any(s.startswith(partial) and s != partial for s in JSON_LANG)
    with pytest.raises(IncompleteOutput):
        constrained.generate(model, "json", set_spec(model, JSON_LANG), max_tokens=5)


def test_budget_end_in_accepting_state_is_not_an_error() -> None:
    model = FakeModel()
    lang = ["x", "xx", "xxx"]  # 'x' is the only token that fits, and 'x' is already accepted
    spec = set_spec(model, lang)
    res = constrained.generate(model, "x", spec, max_tokens=1, jump_forward=False, return_stats=True)
    assert res.text == "x"
    assert res.stats.finish_reason == "length"


def test_stop_strings_cut_free_text() -> None:
    model = FakeModel()
    full = constrained.generate(model, "hello there", None, max_tokens=20)
    assert len(full) > 4
    stop = full[3:5]
    cut = constrained.generate(model, "hello there", None, max_tokens=20, stop=[stop])
    assert cut == full[: full.find(stop)]
    assert list(constrained.stream(model, "hello there", None, max_tokens=20, stop=stop)) and \
        "".join(constrained.stream(model, "hello there", None, max_tokens=20, stop=stop)) == cut


def test_stream_pieces_join_to_generate_and_never_split_utf8() -> None:
    model = FakeModel()
    lang = ["é😀é", "é😀😀", "😀"]
    spec = set_spec(model, lang)
    for seed in range(4):
        pieces = list(constrained.stream(model, "emoji", spec, temperature=1.5, seed=seed, jump_forward=False))
        text = constrained.generate(model, "emoji", spec, temperature=1.5, seed=seed, jump_forward=False)
        assert "".join(pieces) == text
        assert text in lang
        assert all("\ufffd" not in p for p in pieces)


def test_padding_and_special_ids_are_never_sampled_in_free_text() -> None:
    class Loud(FakeModel):
        def start(self, prompts, max_new_tokens=256):  # type: ignore[override]
            session = super().start(prompts, max_new_tokens)
            inner_step = session.step
            loud = [self.logit_width - 1, self.tokenizer.bos_token_id]

            def step(feeds):  # type: ignore[no-untyped-def]
                out = inner_step(feeds)
                out[:, loud] = 1e4
                return out

            session.logits[:, loud] = 1e4
            session.step = step  # type: ignore[method-assign]
            return session

    model = Loud()
    res = constrained.generate(model, "x", None, max_tokens=10, temperature=1.0, seed=0, return_stats=True)
    assert all(t < len(model.tokenizer.token_bytes) and t not in model.tokenizer.special_ids for t in res.token_ids)


def test_bad_arguments_raise_specific_errors() -> None:
    model = FakeModel()
    spec = set_spec(model, WORDS)
    with pytest.raises(PromptError):
        constrained.generate(model, 42, spec)  # type: ignore[arg-type]
    with pytest.raises(PromptError):
        constrained.generate(model, [{"role": "user", "content": "hi"}], spec, chat=False)
    with pytest.raises(PromptError):
        constrained.generate(FakeModel(chat=False), "hi", spec, chat=True)
    with pytest.raises(PromptError):
        constrained.generate(model, [{"content": "no role"}], spec)
    with pytest.raises(SamplingError):
        constrained.generate(model, "hi", spec, temperature=-1)
    with pytest.raises(SamplingError):
        constrained.generate(model, "hi", spec, top_p=0)
    with pytest.raises(OutputTypeError):
        constrained.generate(model, "hi", object())
    with pytest.raises(PromptError):
        list(constrained.stream(model, ["a", "b"], spec))


def test_chat_messages_and_system_prompt_reach_the_template() -> None:
    model = FakeModel()
    constrained.generate(model, [{"role": "user", "content": "hey"}], set_spec(model, WORDS), system="SYS")
    text = model.tokenizer.decode(model.starts[-1][0])
    assert text.startswith("system: SYS\nuser: hey\nassistant: ")
    constrained.generate(FakeModel(chat=False), "plain", set_spec(model, WORDS))


# ---------------------------------------------------------------------------- sampling
def test_sampling_greedy_and_degenerate_filters_pick_the_argmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=100).astype(np.float32)
    logits[[3, 50]] = -np.inf
    best = int(np.argmax(logits))
    assert sample_token(logits, SamplingParams(), rng) == best
    assert sample_token(logits, SamplingParams(temperature=1.0, top_k=1), rng) == best
    assert sample_token(logits, SamplingParams(temperature=1.0, top_p=1e-6), rng) == best


def test_sampling_matches_the_renormalised_distribution() -> None:
    logits = np.array([0.0, 1.0, -np.inf, 2.0, 0.5, -np.inf], dtype=np.float32)
    rng = np.random.default_rng(1)
    n = 20000
    counts = np.bincount([sample_token(logits, SamplingParams(temperature=1.0), rng) for _ in range(n)], minlength=6)
    finite = np.isfinite(logits)
    probs = np.where(finite, np.exp(np.where(finite, logits, 0)), 0)
    probs /= probs.sum()
    assert counts[~finite].sum() == 0
    # 5 standard deviations of a binomial count
    assert np.all(np.abs(counts - n * probs) <= 5 * np.sqrt(n * probs * (1 - probs)) + 1)
    # top-k=2 keeps ids 3 and 1 with renormalised mass
    counts_k = np.bincount([sample_token(logits, SamplingParams(temperature=1.0, top_k=2), rng) for _ in range(4000)], minlength=6)
    assert set(np.flatnonzero(counts_k)) == {1, 3}


def test_sampling_with_everything_masked_raises() -> None:
    with pytest.raises(SamplingError):
        sample_token(np.full(5, -np.inf, dtype=np.float32), SamplingParams(), np.random.default_rng(0))
