"""``allOf`` as one schema: keyword-level intersection of subschemas.

Objects must be merged at keyword level (not by intersecting languages) because each
subschema would write its properties in its own declared order. The result is an
internal schema dict: plain JSON Schema keywords plus list-valued ``pattern`` /
``format`` and ``x-choices`` (a list of ``("anyOf" | "oneOf", branches)`` groups).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ..errors import SchemaUnsupported
from .ecma import EcmaSyntaxError, EcmaUnsupported, ecma_to_python

ANNOTATIONS = frozenset({
    "$schema", "$id", "id", "$anchor", "$dynamicAnchor", "$defs", "definitions", "$comment",
    "$vocabulary", "title", "description", "default", "examples", "deprecated", "readOnly",
    "writeOnly", "contentEncoding", "contentMediaType", "contentSchema", "discriminator",
    "format_annotation", "nullable", "example",
})
#: keywords the compiler reads (any other key is an annotation: unknown and ``x-`` keys)
KNOWN = frozenset({
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "format", "maxItems", "minItems", "uniqueItems", "maxContains",
    "minContains", "contains", "items", "prefixItems", "additionalItems", "unevaluatedItems",
    "properties", "patternProperties", "additionalProperties", "unevaluatedProperties", "propertyNames",
    "maxProperties", "minProperties", "required", "dependentRequired", "dependentSchemas", "dependencies",
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "$dynamicRef", "$recursiveRef",
    "$recursiveAnchor", "x-choices",
})
NUMERIC_TYPES = {"integer", "number"}
ALL_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")

Resolve = Callable[[dict[str, Any]], list[Any]]


def type_set(schema: dict[str, Any]) -> set[str] | None:
    """The ``type`` keyword as a set (None: any type)."""
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _intersect_types(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    out = a & b
    if "integer" in a and "number" in b or "integer" in b and "number" in a:
        out.add("integer")
    return out


def _json_equal(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x == y
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_json_equal(a, b) for a, b in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_json_equal(x[k], y[k]) for k in x)
    return type(x) is type(y) and x == y


def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else [v]


def merge_all(schemas: list[Any], resolve: Resolve, where: str) -> Any:
    """Intersection of ``schemas`` as one internal schema (``False`` when contradictory).

    ``resolve(schema)`` expands a schema into the conjuncts it stands for (its own keywords
    plus its ``$ref`` target and ``allOf`` members), refusing recursion.
    """
    flat: list[dict[str, Any]] = []
    for s in schemas:
        for part in resolve(s) if isinstance(s, dict) else [s]:
            if part is False:
                return False
            if part is True:
                continue
            flat.append(part)
    flat = _align(flat, where)
    out: dict[str, Any] = {}
    for s in flat:
        for key, value in s.items():
            if key in ANNOTATIONS or key in ("allOf", "$ref"):
                continue
            _merge_key(out, key, value, where)
    return out


def _align(flat: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Make ``additionalProperties`` / ``items`` explicit where another conjunct declares a
    property / a prefix position, so that keyword-wise merging is exact."""
    if len(flat) < 2:
        return flat
    names: list[str] = []
    patterns: list[str] = []
    for s in flat:
        names.extend(k for k in s.get("properties", {}) if k not in names)
        patterns.extend(k for k in s.get("patternProperties", {}) if k not in patterns)
    longest = max(len(s.get("prefixItems", [])) for s in flat)
    out = []
    for s in flat:
        s = dict(s)
        extra = s.get("additionalProperties", True)
        missing = [n for n in names if n not in s.get("properties", {})]
        if extra is not True and missing:
            # a name this conjunct does not declare follows its matching patterns, or
            # else its additionalProperties (the same rule the validator applies)
            s["properties"] = {**s.get("properties", {}),
                               **{n: _undeclared(s, n, extra, where) for n in missing}}
        missing_patterns = [p for p in patterns if p not in s.get("patternProperties", {})]
        if extra is not True and missing_patterns:
            # keys another conjunct matches by pattern are "additional" for this one
            if s.get("patternProperties"):
                raise SchemaUnsupported(f"allOf: different patternProperties next to additionalProperties "
                                        f"at {where or '/'}")
            s["patternProperties"] = {p: extra for p in missing_patterns}
        prefix = list(s.get("prefixItems", []))
        if len(prefix) < longest:
            rest = s.get("items", True)
            s["prefixItems"] = prefix + [rest] * (longest - len(prefix))
        out.append(s)
    return out


def _undeclared(s: dict[str, Any], name: str, extra: Any, where: str) -> Any:
    """The subschema conjunct ``s`` applies to a property ``name`` it does not declare."""
    matching = []
    for pattern, sub in (s.get("patternProperties") or {}).items():
        try:
            hit = re.search(ecma_to_python(pattern), name, re.DOTALL) is not None
        except (EcmaUnsupported, EcmaSyntaxError, re.error):
            raise SchemaUnsupported(f"allOf: cannot tell whether {name!r} matches patternProperties "
                                    f"{pattern!r} at {where or '/'}") from None
        if hit:
            matching.append(sub)
    if not matching:
        return extra
    return matching[0] if len(matching) == 1 else {"allOf": matching}


def _both(a: Any, b: Any) -> Any:
    """Subschemas ``a`` and ``b`` together: one of them when they are the same (merging a
    schema with itself must not double its choices: recursions through merges met the
    same items twice per level and doubled their anyOf groups), else their allOf."""
    return a if a is b or _json_equal(a, b) else {"allOf": [a, b]}


def _add_choices(out: dict[str, Any], groups: Any) -> None:
    """Append anyOf/oneOf groups to ``out``'s ``x-choices``, skipping a group equal to
    one already there (a choice conjoined with itself is the same choice)."""
    have = out.setdefault("x-choices", [])
    for kind, branches in groups:
        if not any(k == kind and (b is branches or _json_equal(b, branches)) for k, b in have):
            have.append((kind, list(branches)))


def _merge_key(out: dict[str, Any], key: str, value: Any, where: str) -> None:
    if key not in out:
        if key == "type":
            out[key] = sorted(_as_list(value))
        elif key == "const":
            _merge_key(out, "enum", [value], where)
        elif key in ("anyOf", "oneOf"):
            _add_choices(out, [(key, list(value))])
        elif key in ("pattern", "format"):
            out[key] = _as_list(value)
        elif key == "enum":
            out[key] = list(value)
        elif key == "properties" or key == "patternProperties":
            out[key] = dict(value)
        elif key == "x-choices":
            _add_choices(out, value)
        else:
            out[key] = value
        return
    old = out[key]
    if key == "type":
        t = _intersect_types(set(old), set(_as_list(value)))
        out[key] = sorted(t) if t is not None else old
    elif key == "enum":
        out[key] = [v for v in old if any(_json_equal(v, w) for w in value)]
    elif key == "const":
        _merge_key(out, "enum", [value], where)
    elif key in ("pattern", "format"):
        out[key] = old + [v for v in _as_list(value) if v not in old]
    elif key == "x-choices":
        _add_choices(out, value)
    elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains"):
        out[key] = max(old, value)
    elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains"):
        out[key] = min(old, value)
    elif key == "required":
        out[key] = list(dict.fromkeys(list(old) + list(value)))
    elif key == "uniqueItems":
        out[key] = bool(old) or bool(value)
    elif key == "multipleOf":
        if all(isinstance(v, int) or (isinstance(v, float) and v.is_integer()) for v in (old, value)):
            out[key] = math.lcm(int(old), int(value))
        elif old != value:
            raise SchemaUnsupported(f"multipleOf: two non-integer multipleOf in allOf at {where or '/'}")
    elif key in ("properties", "patternProperties"):
        merged = dict(old)
        for name, sub in value.items():
            merged[name] = _both(merged[name], sub) if name in merged else sub
        out[key] = merged
    elif key in ("additionalProperties", "items", "propertyNames", "unevaluatedProperties",
                 "unevaluatedItems", "contains", "additionalItems"):
        out[key] = _both(old, value)
    elif key == "prefixItems":
        n = max(len(old), len(value))
        out[key] = [_both(old[i], value[i]) if i < len(old) and i < len(value)
                    else (old[i] if i < len(old) else value[i]) for i in range(n)]
    elif key == "dependentRequired":
        merged = dict(old)
        for name, req in value.items():
            merged[name] = list(dict.fromkeys(list(merged.get(name, [])) + list(req)))
        out[key] = merged
    elif _json_equal(old, value) or key not in KNOWN:
        pass  # equal, or an annotation (``x-otm-entity``): the first one is kept
    else:
        raise SchemaUnsupported(f"{key}: two different {key!r} in allOf at {where or '/'}")
