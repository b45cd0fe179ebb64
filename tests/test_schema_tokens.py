"""Token-level checks on the Llama-3 vocabulary (128k byte-level BPE tokens).

* A deterministic sample of the JSON-Schema-Test-Suite: valid instances (policy
  serialisation) go through ``mask()`` / ``advance`` token by token with EOS allowed at
  the end; invalid ones are stopped by the mask or refused EOS.
* Property tests: sampling under random logits (hypothesis draws the seeds), then a
  shortest completion; every output passes ``jsonschema`` with format checking, and
  pydantic outputs pass ``model_validate_json``.
"""
from __future__ import annotations

import collections
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained.errors import SchemaUnsatisfiable, SchemaUnsupported
from constrained.schema import compile_json_schema
from constrained.vocab import Vocabulary
from tests.sampling import PRINTABLE_ASCII, longest_match_ids, sample_then_complete
from tests.test_schema_helpers import (
    invalid_spellings,
    policy_dumps,
    reference_validator,
    with_draft,
)
from tests.testdata import corpus, vocab_path

SUITE_SAMPLE_EVERY = 9  # every 9th schema group of the suite (deterministic)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_gguf(vocab_path("llama-bpe"))


@pytest.fixture(scope="module")
def by_bytes(vocab: Vocabulary) -> dict[bytes, int]:
    special = set(vocab.special_token_ids)
    out: dict[bytes, int] = {}
    for i, t in enumerate(vocab.tokens):
        if i not in special and t and t not in out:
            out[t] = i
    return out


def tokenize(data: bytes, by_bytes: dict[bytes, int]) -> list[int]:
    """Greedy longest-match tokenization (any tokenization must be accepted)."""
    return longest_match_ids(data, by_bytes, 24)


def run_tokens(constraint: Any, ids: list[int], eos: int) -> bool:
    """Feed ``ids`` through the mask; True iff every token is allowed and EOS is then allowed."""
    m = constraint.matcher()
    for tid in ids:
        if not m.mask()[tid]:
            return False
        m.advance(tid)
    return bool(m.mask()[eos]) and m.is_accepting()


def test_suite_sample_token_by_token(vocab: Vocabulary, by_bytes: dict[bytes, int]) -> None:
    groups: collections.OrderedDict[str, list[dict[str, Any]]] = collections.OrderedDict()
    with open(corpus("jsonschema_suite.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            if not row["needs_remote_refs"]:
                groups.setdefault(row["group_id"], []).append(row)
    eos = vocab.eos_token_ids[0]
    counts: collections.Counter[str] = collections.Counter()
    for gid in list(groups)[::SUITE_SAMPLE_EVERY]:
        rows = groups[gid]
        schema = with_draft(rows[0]["schema"], rows[0]["draft"])
        try:
            c = compile_json_schema(schema, vocab)
        except (SchemaUnsupported, SchemaUnsatisfiable):
            counts["refused"] += 1
            continue
        for row in rows:
            if row["valid"]:
                text = policy_dumps(row["instance"], schema).encode()
                if c.accepts(text):  # policy exclusions are covered by the string-level ratchet
                    assert run_tokens(c, tokenize(text, by_bytes), eos), f"{row['id']}: {text!r}"
                    counts["valid_tokens"] += 1
            else:
                for text in invalid_spellings(row["instance"]):
                    assert not run_tokens(c, tokenize(text.encode(), by_bytes), eos), \
                        f"INVALID ACCEPTED {row['id']}: {text!r}"
                counts["invalid_tokens"] += 1
    print(dict(counts))
    assert counts["valid_tokens"] >= 60 and counts["invalid_tokens"] >= 40


# --------------------------------------------------------------------------- sampling
def sample(c: Any, vocab: Vocabulary, by_bytes: dict[bytes, int], seed: int, max_tokens: int = 40) -> bytes:
    """Random masked tokens (shorter ones favoured), then a teacher-forced completion."""
    return sample_then_complete(c, vocab, np.random.default_rng(seed), by_bytes,
                                max_random_tokens=max_tokens, stop_probability=0.3,
                                length_penalty=0.5, max_token_len=24, alphabet=PRINTABLE_ASCII)


PROPERTY_SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                      "age": {"type": "integer", "minimum": 0, "maximum": 130},
                                      "email": {"type": "string", "format": "email"}},
     "required": ["name", "age"], "additionalProperties": False},
    {"type": "array", "items": {"enum": ["red", "green", 3, None]}, "minItems": 1, "maxItems": 4},
    {"type": "number", "exclusiveMinimum": -2.5, "maximum": 7.25},
    {"type": "string", "pattern": "^[a-z]+-\\d{2,3}$"},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
                                      "id": {"type": "string", "format": "uuid"}},
     "required": ["when"]},
    {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                          "kids": {"type": "array", "items": {"$ref": "#/$defs/node"},
                                                                   "maxItems": 2}},
                        "required": ["v"], "additionalProperties": False}},
     "$ref": "#/$defs/node"},
    {"anyOf": [{"type": "boolean"}, {"type": "object", "properties": {"x": {"type": "number"}},
                                     "additionalProperties": {"type": "string", "maxLength": 3}}]},
]


@pytest.mark.parametrize("index", range(len(PROPERTY_SCHEMAS)))
def test_sampling_under_random_logits_validates(index: int, vocab: Vocabulary, by_bytes: dict[bytes, int]) -> None:
    schema = PROPERTY_SCHEMAS[index]
    c = compile_json_schema(schema, vocab)
    validator = reference_validator(schema)

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.integers(0, 2**32 - 1))
    def check(seed: int) -> None:
        out = sample(c, vocab, by_bytes, seed)
        errors = list(validator.iter_errors(json.loads(out)))
        assert not errors, (out, errors[0].message)

    check()
