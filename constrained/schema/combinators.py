"""Reasoning about combinators before they are compiled: which JSON types a oneOf
branch leaves unconstrained, which branches provably cannot overlap, which
patternProperties can match a common key, and negated ``required`` lists.

Pure functions over schema dicts and regex ASTs; ``compiler.py`` decides what to do with
their answers (docs/json-schema.md, "Keywords": oneOf, not, patternProperties).
"""
from __future__ import annotations

import itertools
from typing import Any

from ..automata.ast import And, Node
from ..errors import ConstraintTooComplex
from .merge import ANNOTATIONS, KNOWN

#: combinations of two or more patterns one key may match together (each a key language
#: of intersections and complements); pairwise disjoint patterns have none
MAX_PATTERN_SUBSETS = 16

#: keywords that constrain only values of one JSON type (vacuous for every other type)
TYPE_KEYWORDS = {
    "object": frozenset({"properties", "required", "additionalProperties", "patternProperties",
                         "propertyNames", "minProperties", "maxProperties", "dependentRequired",
                         "dependentSchemas", "dependencies", "unevaluatedProperties"}),
    "array": frozenset({"items", "prefixItems", "additionalItems", "contains", "minContains",
                        "maxContains", "minItems", "maxItems", "uniqueItems", "unevaluatedItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
}
#: JSON types as oneOf is split by them ("integer" counts as "number")
TYPE_GROUPS = ("null", "boolean", "object", "array", "string", "number")


def negated_required(schema: Any) -> list[str] | None:
    """The names of ``not: {required: [...]}`` (nothing else negated; an allOf of such
    schemas is one list), else None."""
    negated = schema.get("not") if isinstance(schema, dict) else None
    return required_only(negated)


def required_only(schema: Any) -> list[str] | None:
    """The names a schema requires if it says nothing else (``required`` and allOf
    members of the same kind), else None."""
    if not isinstance(schema, dict) or not all(k in ("required", "allOf") or k in ANNOTATIONS
                                               for k in schema):
        return None
    names = schema.get("required", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    out = list(names)
    members = schema.get("allOf", [])
    if not isinstance(members, list):
        return None
    for sub in members:
        more = required_only(sub)
        if more is None:
            return None
        out += more
    return list(dict.fromkeys(out)) if ("required" in schema or members) else None


ALL_TYPE_SET = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})


def restricted(schema: Any, types: set[str]) -> Any:
    """``schema`` (a resolved oneOf branch) restricted to values of ``types``."""
    if not isinstance(schema, dict):
        return schema if schema is False else {"type": sorted(types)}
    return {**schema, "type": sorted(types)}


def vacuous(schema: Any, group: str) -> bool:
    """Whether ``schema`` admits every value of JSON type ``group``: it has no keyword
    but annotations, ``type`` and keywords of other types."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    others = frozenset().union(*(kw for t, kw in TYPE_KEYWORDS.items() if t != group))
    return all(k == "type" or k not in KNOWN or k in others for k in schema)


def closed_apart(a: Any, b: Any) -> bool:
    """Two object schemas that allow no undeclared property and declare no common one:
    the empty object is the only value that can match both."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    for s in (a, b):
        if s.get("additionalProperties", True) is not False or s.get("patternProperties") \
                or not isinstance(s.get("properties", {}), dict):
            return False
    return not set(a.get("properties", {})) & set(b.get("properties", {}))


def languages_disjoint(a: Node, b: Node) -> bool:
    """Whether no string is in both regex languages (False where the intersection is
    too complex to decide: callers stay conservative)."""
    from ..automata.dfa import LazyDFA  # local: automata builds nothing of schema

    try:
        return LazyDFA([And((a, b))]).start == 0
    except ConstraintTooComplex:
        return False


def overlap_graph(nodes: list[Node]) -> list[set[int]]:
    """For each key pattern, the others that can match a common key (pairwise
    intersection emptiness; assumed to overlap where that check is too complex)."""
    adj: list[set[int]] = [set() for _ in nodes]
    for i, j in itertools.combinations(range(len(nodes)), 2):
        if not languages_disjoint(nodes[i], nodes[j]):
            adj[i].add(j)
            adj[j].add(i)
    return adj


def cliques(adj: list[set[int]]) -> list[tuple[int, ...]]:
    """Every set of pairwise-overlapping patterns (a key matching several patterns
    matches a clique of them), smallest first; stops growing once there are more than
    MAX_PATTERN_SUBSETS of two or more."""
    out: list[tuple[int, ...]] = []
    frontier: list[tuple[int, ...]] = [(i,) for i in range(len(adj))]
    while frontier and len(out) <= len(adj) + MAX_PATTERN_SUBSETS:
        out.extend(frontier)
        frontier = [c + (j,) for c in frontier for j in range(c[-1] + 1, len(adj))
                    if all(j in adj[i] for i in c)]
    return out + frontier
