"""The serving-engine backend, driven exactly as a vLLM-style server drives it.

A batch of requests (JSON Schema, regex, Lark grammar, choice, JSON object) shares one
int32 bitmask. Each step the "server" fills every row, masks the logits, samples, accepts
the token; on some steps it proposes speculative draft tokens (some invalid), validates
them, accepts the valid prefix and rolls back what the "target model" refuses; whenever a
jump-forward string exists it tokenizes it and feeds it in one chunk. The stand-in model
prefers the bytes of a hand-written target output (teacher forcing with noise), so every
request finishes; final outputs are checked with `re`, `jsonschema` and Lark itself.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import jsonschema
import lark
import numpy as np
import pytest

from constrained import TokenRejected, Vocabulary, apply_token_bitmask
from constrained.integrations.serving import RequestType, ServingBackend
from constrained.masks.bitmask import bitmask_to_bool

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}
LIST_GRAMMAR = r"""
start: "[" item ("," item)* "]"
item: NUMBER | WORD
NUMBER: /[0-9]+/
WORD: /[a-z]+/
"""
PHONE = r"\(\d{3}\) \d{3}-\d{4}"


def _check_json(text: str) -> None:
    jsonschema.validate(json.loads(text), SCHEMA)


def _check_object(text: str) -> None:
    assert isinstance(json.loads(text), dict)


# request type, spec, target output the stand-in model wants, reference validator
REQUESTS = [
    (RequestType.JSON, json.dumps(SCHEMA), '{"name": "Ada", "age": 36, "tags": ["a", "b"]}', _check_json),
    (RequestType.REGEX, PHONE, "(555) 010-4242", lambda t: re.fullmatch(PHONE, t) or pytest.fail(t)),
    (RequestType.GRAMMAR, LIST_GRAMMAR, "[12,abc,7]", lambda t: lark.Lark(LIST_GRAMMAR).parse(t)),
    (RequestType.CHOICE, json.dumps(["yes please", "yes sir", "no"]), "yes sir",
     lambda t: t in {"yes please", "yes sir", "no"} or pytest.fail(t)),
    (RequestType.JSON_OBJECT, "", '{"k": [1, 2]}', _check_object),
]


@pytest.fixture(scope="module")
def vocab(load_vocab: Callable[[str], Vocabulary]) -> Vocabulary:
    return load_vocab("gpt-2")


@pytest.fixture(scope="module", params=["gpt-2", "llama-spm", "llama-bpe"])
def any_vocab(request: pytest.FixtureRequest, load_vocab: Callable[[str], Vocabulary]) -> Vocabulary:
    """Byte-level BPE (GPT-2, Llama-3) and SentencePiece with byte fallback (Llama-2)."""
    return load_vocab(request.param)


class GreedyTokenizer:
    """Longest-match tokenization over the vocabulary's text tokens (a valid, non-canonical one)."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.lookup: dict[bytes, int] = {}
        for i in vocab.text_token_ids.tolist():
            self.lookup.setdefault(vocab.tokens[i], i)
        self.longest = min(24, max(len(t) for t in self.lookup))

    def encode(self, data: bytes) -> list[int]:
        ids, pos = [], 0
        while pos < len(data):
            for size in range(min(self.longest, len(data) - pos), 0, -1):
                tid = self.lookup.get(data[pos:pos + size])
                if tid is not None:
                    ids.append(tid)
                    pos += size
                    break
            else:
                raise AssertionError(f"no token for byte {data[pos]!r}")
        return ids


def test_requests_validate_under_reference_parsers() -> None:
    """The hand-written targets are themselves valid (so the test checks the engine, not them)."""
    for _kind, _spec, target, check in REQUESTS:
        check(target)


@pytest.mark.parametrize("seed", [1234, 7])
def test_serving_loop_batch_speculative_rollback_jump_forward(any_vocab: Vocabulary, seed: int) -> None:
    vocab = any_vocab
    backend = ServingBackend(vocab)
    tok = GreedyTokenizer(vocab)
    rng = np.random.default_rng(seed)
    grammars = [backend.compile_grammar(kind, spec) for kind, spec, _t, _c in REQUESTS]
    targets = [t.encode() for _k, _s, t, _c in REQUESTS]
    outputs = [b"" for _ in REQUESTS]
    bitmask = backend.allocate_token_bitmask(len(REQUESTS))
    assert bitmask.dtype == np.int32 and bitmask.shape == (len(REQUESTS), (vocab.logit_width + 31) // 32)
    eos = vocab.eos_token_ids[0]
    jumped = speculated = rolled_back = 0

    for step in range(200):
        live = [i for i, g in enumerate(grammars) if not g.is_terminated()]
        if not live:
            break
        # -- jump-forward: forced text is fed as one chunk (must be a prefix of what is left)
        for i in live:
            forced = grammars[i].jump_forward_string().encode()
            if forced:
                rest = targets[i][len(outputs[i]):]
                assert rest.startswith(forced), (REQUESTS[i][0], forced, rest)
                assert grammars[i].accept_tokens(f"req{i}", tok.encode(forced))
                outputs[i] += forced
                jumped += 1
        # -- masks for the whole batch, then "model" logits preferring the target bytes
        bitmask[:] = -1
        for i in live:
            grammars[i].fill_bitmask(bitmask, i)
        logits = rng.normal(size=(len(REQUESTS), vocab.logit_width)).astype(np.float32)
        for i in live:
            rest = targets[i][len(outputs[i]):]
            if rest:
                want = tok.encode(rest)[0]
                logits[i, want] += 50.0
            else:
                logits[i, eos] += 50.0
        apply_token_bitmask(logits, bitmask)
        chosen = logits.argmax(axis=1)
        for i in live:
            t = int(chosen[i])
            rest = targets[i][len(outputs[i]):]
            expected = tok.encode(rest)[0] if rest else eos
            assert t == expected, f"{REQUESTS[i][0]}: target token {expected} was masked at {outputs[i]!r}"
            # -- speculative decoding: drafts = next target tokens + one random token
            if step % 2 == 1 and rest:
                drafts = tok.encode(rest)[:3]
                bad = int(rng.integers(0, vocab.logit_width))
                proposal = drafts + [bad]
                before = bitmask[i].copy()
                accepted = grammars[i].validate_tokens(proposal)
                assert accepted[: len(drafts)] == drafts  # valid drafts are never refused
                assert grammars[i].accept_tokens(f"req{i}", accepted)
                if len(accepted) == len(proposal):
                    # the random token was accepted: the mask at that point must allow it
                    grammars[i].rollback(1)
                    row = np.zeros((1, bitmask.shape[1]), np.int32)
                    grammars[i].fill_bitmask(row, 0)
                    assert bitmask_to_bool(row, vocab.logit_width)[0, bad]
                    grammars[i].accept_tokens(f"req{i}", [bad])
                else:
                    row = np.zeros((1, bitmask.shape[1]), np.int32)
                    grammars[i].fill_bitmask(row, 0)
                    assert not bitmask_to_bool(row, vocab.logit_width)[0, bad] or bad == eos
                # the target model refuses every draft: roll all of them back
                grammars[i].rollback(len(accepted))
                rolled_back += len(accepted)
                speculated += 1
                again = np.zeros((1, bitmask.shape[1]), np.int32)
                grammars[i].fill_bitmask(again, 0)
                assert np.array_equal(again[0], before), "rollback did not restore the state"
            assert grammars[i].accept_tokens(f"req{i}", [t])
            if t != eos:
                outputs[i] += vocab.tokens[t]

    assert all(g.is_terminated() for g in grammars), [o for o in outputs]
    assert jumped > 0 and speculated > 0 and rolled_back > 0
    for (kind, _spec, target, check), out in zip(REQUESTS, outputs):
        text = out.decode()
        assert text == target, kind
        check(text)


def test_rejected_tokens_leave_state_unchanged(vocab: Vocabulary) -> None:
    backend = ServingBackend(vocab)
    g = backend.compile_grammar("regex", r"\d+")
    tok = GreedyTokenizer(vocab)
    assert g.accept_tokens("r", tok.encode(b"12"))
    n = g.num_processed_tokens
    letters = tok.encode(b"x")
    assert not g.accept_tokens("r", tok.encode(b"3") + letters)  # second token invalid: nothing taken
    assert g.num_processed_tokens == n
    assert g.validate_tokens(tok.encode(b"3") + letters) == tok.encode(b"3")
    assert not g.is_terminated() and g.is_accepting()
    with pytest.raises(TokenRejected):
        g.matcher.advance(letters[0])
    eos = vocab.eos_token_ids[0]
    assert g.accept_tokens("r", [eos]) and g.is_terminated()
    g.reset()
    assert not g.is_terminated() and g.num_processed_tokens == 0


def test_compile_cache_and_bad_specs(vocab: Vocabulary) -> None:
    from constrained import CompileError, ConstrainedError

    backend = ServingBackend(vocab, cache_size=2)
    a = backend.compile_grammar(RequestType.CHOICE, ["x", "y"])
    b = backend.compile_grammar("choice", '["x", "y"]')
    assert a.matcher is not b.matcher  # per-request state
    with pytest.raises(CompileError):
        backend.compile_grammar("choice", "not json")
    with pytest.raises(CompileError):
        backend.compile_grammar("choice", [])
    with pytest.raises(ValueError):
        backend.compile_grammar("sql", "select")
    with pytest.raises(ConstrainedError):
        a.rollback(1)  # nothing accepted yet
    with pytest.raises(CompileError):
        backend.compile_grammar("regex", r"(a)\1")


def test_torch_bitmask_buffer(vocab: Vocabulary) -> None:
    torch = pytest.importorskip("torch", reason="torch not installed (pip install 'constrained[torch]')")
    backend = ServingBackend(vocab)
    bits = backend.allocate_token_bitmask(2, framework="torch")
    assert bits.dtype == torch.int32
    g = backend.compile_grammar("regex", r"ab")
    g.fill_bitmask(bits, 1)
    allowed = bitmask_to_bool(bits.numpy(), vocab.logit_width)
    assert allowed[0].all()  # row 0 untouched
    ids = np.flatnonzero(allowed[1])
    assert ids.size > 0 and all(b"ab".startswith(vocab.tokens[i]) for i in ids)
