"""Property test: random object schemas with oneOf / anyOf / not / enum combinators agree
with jsonschema on every candidate value (string level, policy serialisation).

Every schema declares the properties a, b, c in that order and candidates write their
keys in alphabetical order (``d`` is never declared), so the policy's key order is the
candidates' own: a disagreement is a language error, never a serialisation artefact.
Schemas the compiler refuses are skipped (refusing is allowed; accepting wrongly is not);
one it calls unsatisfiable must have no valid candidate.
"""
from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained.errors import SchemaUnsatisfiable, SchemaUnsupported
from tests.test_schema_helpers import acceptor, reference_validator

NAMES = ["a", "b", "c"]
VALUES: list[Any] = [1, 7, "s", None]
CANDIDATES: list[Any] = [5, "s", None, [], {}]
for _bits in range(1, 16):
    for _v in (1, "s"):
        CANDIDATES.append({k: _v for i, k in enumerate(NAMES + ["d"]) if _bits >> i & 1})
CANDIDATES += [{"a": 7, "b": 1}, {"a": None, "c": 7}, {"b": "s", "c": None}]

names = st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True).map(sorted)


@st.composite
def _branch(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["required", "const", "not_required", "size", "closed", "type", "enum"]))
    if kind == "required":
        return {"required": draw(names)}
    if kind == "const":
        n = draw(st.sampled_from(NAMES))
        return {"properties": {n: {"const": draw(st.sampled_from(VALUES))}}, "required": [n]}
    if kind == "not_required":
        return {"not": {"required": draw(names)}}
    if kind == "size":
        key = draw(st.sampled_from(["minProperties", "maxProperties"]))
        return {key: draw(st.integers(0, 2))}
    if kind == "closed":
        kept = draw(names)
        return {"additionalProperties": False, "properties": {n: {} for n in kept}}
    if kind == "type":
        return {"type": draw(st.sampled_from(["object", "string", "integer"]))}
    return {"enum": draw(st.lists(st.sampled_from(CANDIDATES[:12]), min_size=1, max_size=3))}


@st.composite
def _schemas(draw: st.DrawFn) -> dict[str, Any]:
    props = {n: draw(st.sampled_from([{}, {"type": "integer"}, {"type": ["string", "null"]}]))
             for n in NAMES}
    schema: dict[str, Any] = {"properties": props}
    if draw(st.booleans()):
        schema["type"] = "object"
    if draw(st.booleans()):
        schema["required"] = draw(names)
    combinator = draw(st.sampled_from(["oneOf", "anyOf", "not", "allOf"]))
    if combinator == "not":
        schema["not"] = draw(_branch())
    else:
        schema[combinator] = draw(st.lists(_branch(), min_size=2, max_size=3))
    return schema


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas())
def test_random_combinator_schemas_agree_with_jsonschema(schema: dict[str, Any]) -> None:
    check = reference_validator(schema)
    try:
        accepts = acceptor(schema)
    except SchemaUnsupported:
        return
    except SchemaUnsatisfiable:  # a claim the reference must confirm on every candidate
        assert not any(check.is_valid(v) for v in CANDIDATES), schema
        return
    for value in CANDIDATES:
        text = json.dumps(value)
        assert accepts(text.encode()) == check.is_valid(value), (schema, text)
